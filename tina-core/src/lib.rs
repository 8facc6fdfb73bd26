//! tina-core (under construction)
#![no_std]
