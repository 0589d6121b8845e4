"""Reading the kernel's own Rust code: `verify source`.

`locate` parses a file with tree-sitter and finds the functions under check;
`interpreter` walks a function's syntax tree once over an abstract value
domain; `concrete` (Python integers over the reference allocator) and
`symbolic` (Z3 terms over the allocator encoding) are the two domains;
`conformance` proves the source's transition equal to the model's, or finds
the input where they differ; `command` is the command line's view of it.
"""
