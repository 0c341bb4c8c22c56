//! This level's mistakes: what each looks like from outside, and the hint for it.

use crate::Mistake;

pub const MISTAKES: &[Mistake] = &[];
