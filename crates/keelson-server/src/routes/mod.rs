pub mod catalog;
pub mod health;
pub mod jobs;
pub mod mlflow;
pub mod models;
