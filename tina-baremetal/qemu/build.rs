//! Puts `memory.x` where cortex-m-rt's `link.x` looks for it, and adds defmt's linker script
//! when the `defmt` feature is on.

use std::{env, fs, path::PathBuf};

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out_dir.join("memory.x")).expect("copy memory.x into OUT_DIR");
    println!("cargo:rustc-link-search={}", out_dir.display());
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        // defmt keeps its format strings in a non-loaded `.defmt` section of the ELF.
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
