//! Cross-crate integration tests for Tina live in this package's `tests/` folder.
