"""The `plot` tool: graphs of functions and data in killable workers."""
