//! The parts of `check()` that need no server: the steps a script is made of, the overlay of
//! their effects on the schema, naming and the script's own text.

pub mod naming;
pub mod overlay;
pub mod script;
pub mod step;
