"""Measurements that print a table and write JSON under build/bench/. Run each from the
repository root as a module, `.venv/bin/python -m benchmarks.<name>`, so that its
imports are the package's (`benchmarks.timing`) and no file here shadows a project
package."""
