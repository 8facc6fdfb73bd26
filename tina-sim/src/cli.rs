//! CLI (todo)
