//! Tina's benchmark suite (under construction).
fn main() {}
