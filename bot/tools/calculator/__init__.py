"""The `calculate` tool: exact math with SymPy in killable workers."""
