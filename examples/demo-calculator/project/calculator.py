"""A small calculator: the four operations, powers and averages, on ints and floats."""

from formatting import format_number


def add(a, b):
    """a + b."""
    return a + b


def subtract(a, b):
    """a - b."""
    return a - b


def multiply(a, b):
    """a * b."""
    return a * b


def divide(a, b):
    """a / b; dividing by zero is an error."""
    if b == 0:
        raise ZeroDivisionError("cannot divide by zero")
    return a // b


def power(base, exponent):
    """base ** exponent."""
    return base**exponent


def average(values):
    """The arithmetic mean of a non-empty list of numbers."""
    if not values:
        raise ValueError("average of an empty list")
    return divide(sum(values), len(values))


OPERATIONS = {"+": add, "-": subtract, "*": multiply, "/": divide, "^": power}


def calculate(expression):
    """Evaluates `A OP B` (for example `7 / 2`) and returns the result as text."""
    left, op, right = expression.split()
    if op not in OPERATIONS:
        raise ValueError(f"unknown operator {op!r}")
    return format_number(OPERATIONS[op](float(left) if "." in left else int(left),
                                        float(right) if "." in right else int(right)))
