import unittest

from calculator import add, average, calculate, divide, multiply, power, subtract


class CalculatorTest(unittest.TestCase):
    def test_add_and_subtract(self):
        self.assertEqual(add(2, 3), 5)
        self.assertEqual(subtract(2, 3), -1)

    def test_multiply_and_power(self):
        self.assertEqual(multiply(4, 2.5), 10)
        self.assertEqual(power(2, 10), 1024)

    def test_divide(self):
        self.assertEqual(divide(7, 2), 3.5)
        self.assertEqual(divide(-1, 4), -0.25)
        with self.assertRaises(ZeroDivisionError):
            divide(1, 0)

    def test_average(self):
        self.assertEqual(average([1, 2]), 1.5)
        with self.assertRaises(ValueError):
            average([])

    def test_calculate(self):
        self.assertEqual(calculate("7 / 2"), "3.5")
        self.assertEqual(calculate("2 ^ 8"), "256")


if __name__ == "__main__":
    unittest.main()
