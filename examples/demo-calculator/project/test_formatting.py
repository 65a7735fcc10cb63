import unittest

from formatting import format_number


class FormattingTest(unittest.TestCase):
    def test_whole_numbers_have_no_point(self):
        self.assertEqual(format_number(3.0), "3")
        self.assertEqual(format_number(-12), "-12")

    def test_fractions_keep_six_digits(self):
        self.assertEqual(format_number(3.5), "3.5")
        self.assertEqual(format_number(1 / 3), "0.333333")


if __name__ == "__main__":
    unittest.main()
