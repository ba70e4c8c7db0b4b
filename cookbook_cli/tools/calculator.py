"""The built-in `calculator` tool: arithmetic on numbers, evaluated safely.

The expression is parsed with `ast` and only numbers, parentheses, unary
+/- and the binary operators + - * / // % ** are evaluated (no names, calls
or attributes: nothing of Python is reachable, and no `eval`). Sizes are
bounded so that `9**9**9` is refused instead of hanging the process.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from cookbook_cli.tools.tool import tool

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_DIGITS = 100

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorError(ValueError):
    """An expression the calculator refuses, with why (the model reads it)."""


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; CalculatorError says what is wrong."""
    text = expression.strip().replace("×", "*").replace("÷", "/").replace("^", "**")
    if not text:
        raise CalculatorError("empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    return _value(tree.body)


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
        if isinstance(result, complex):
            raise CalculatorError("the result is not a real number")
        if isinstance(result, int) and abs(result) >= 10**MAX_DIGITS:
            raise CalculatorError(f"the result has more than {MAX_DIGITS} digits")
        return result
    raise CalculatorError(f"only numbers and + - * / // % ** ( ) are allowed, not {ast.unparse(node)!r}")


def format_number(value: int | float) -> str:
    """An integer as is; a float to 10 significant digits, whole floats without `.0`."""
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            raise CalculatorError("the result is not a finite number")
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}"
    return str(value)


@tool(timeout_s=2.0)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return its value.

    Args:
        expression: numbers with + - * / // % ** and parentheses, e.g. "(12 + 30) * 7 / 3"
    """
    return format_number(evaluate(expression))
