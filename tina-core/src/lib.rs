//! tina-core (under construction)
#![no_std]
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod ring;
pub mod sync;
