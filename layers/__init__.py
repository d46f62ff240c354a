"""Lambda packaging: runtime/model layers and function zips, deterministic and size-checked."""
