//! The framing codecs under every split of their input across receives, at and past their
//! limits, and against reference decoders on random streams.

mod common;
mod decoder;
mod encoders;
mod header_body;
mod in_place;
mod length_prefixed;
mod lines;
mod property;
