pub mod catalog;
pub mod endpoints;
pub mod health;
pub mod inference;
pub mod jobs;
pub mod lineage;
pub mod mlflow;
pub mod models;
