pub mod catalog;
pub mod datasets;
pub mod endpoints;
pub mod health;
pub mod inference;
pub mod jobs;
pub mod mlflow;
pub mod models;
