"""How results are shown: whole numbers without a decimal point, others to 6 significant digits."""


def format_number(value):
    """`3.0` -> `3`, `3.5` -> `3.5`, `1/3` -> `0.333333`."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"
