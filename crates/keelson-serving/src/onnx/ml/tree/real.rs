//! The float type a forest is evaluated in. onnxruntime compares and sums in f64 for FP64 inputs
//! and in f32 otherwise; doing the same keeps every split decision and sum bit-for-bit alike.

use std::fmt::Debug;
use std::ops::{Add, Div, Neg, Sub};

pub(crate) trait Real:
    Copy
    + Default
    + PartialOrd
    + Debug
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const HALF: Self;
    fn from_f64(value: f64) -> Self;
    fn from_count(count: usize) -> Self;
    fn to_f32(self) -> f32;
    fn is_nan(self) -> bool;
    fn nan() -> Self;
}

impl Real for f32 {
    const HALF: f32 = 0.5;
    fn from_f64(value: f64) -> f32 {
        value as f32
    }
    fn from_count(count: usize) -> f32 {
        count as f32
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn nan() -> f32 {
        f32::NAN
    }
}

impl Real for f64 {
    const HALF: f64 = 0.5;
    fn from_f64(value: f64) -> f64 {
        value
    }
    fn from_count(count: usize) -> f64 {
        count as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn nan() -> f64 {
        f64::NAN
    }
}
