"""Default limits on input size (each configurable from the CLI and the API)."""

#: numbers and names in one expression
DEFAULT_MAX_TERMS = 5_000_000
#: nesting depth: parentheses, calls, unary signs
DEFAULT_MAX_DEPTH = 100_000
#: elements in one input tensor, checked before the value is allocated
DEFAULT_MAX_ELEMENTS = 10_000_000
#: dimensions of any tensor, input or intermediate (numpy broadcasts up to 32)
MAX_DIMS = 32
