"""The command line: click commands that parse, call the plumbing or porcelain, format and
map errors to exit codes. Nothing below ``ama/`` but this package prints or exits."""
