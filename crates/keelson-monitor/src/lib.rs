//! Keelson monitoring: drift statistics, reference profiles, drift reports, monitors, alerts,
//! notifications and retraining triggers.

pub mod notify;
pub mod stats;
