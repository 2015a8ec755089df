"""Pure analytics math (batch functions) and small streaming classes used by the workers."""
