//! Keelson monitoring: drift statistics, column samples of datasets and collected traffic, drift
//! reports, model performance, monitors, alerts, notifications and retraining triggers.

pub mod collected;
pub mod drift;
pub mod error;
pub mod jobs;
pub mod notify;
pub mod performance;
pub mod profile;
pub mod reference;
pub mod report;
pub mod sample;
pub mod service;
pub mod spec;
pub mod stats;

pub use error::MonitorError;
pub use service::MonitorService;
