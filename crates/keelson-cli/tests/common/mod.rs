//! Spawns the real `keelson` binary for tests where process behaviour matters.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn keelson() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keelson"));
    // Tests must not pick up a developer's configuration.
    for (name, _) in std::env::vars() {
        if name.starts_with("KEELSON_") {
            command.env_remove(name);
        }
    }
    command.env("KEELSON_LOG__LEVEL", "info");
    command
}

pub struct ServerProcess {
    pub child: Child,
    pub url: String,
    pub log_path: PathBuf,
}

impl ServerProcess {
    /// Starts `keelson server` on a free port and waits until it prints where it listens.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_with(data_dir, extra_args, true)
    }

    /// [`ServerProcess::start`] with authentication on.
    pub fn start_secured(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_with(data_dir, extra_args, false)
    }

    fn start_with(data_dir: &Path, extra_args: &[&str], auth_disabled: bool) -> Self {
        let log_path = data_dir.join(format!("server-{}.log", uuid_like()));
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = keelson();
        command
            .args(["server", "--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            // A developer's local server: loopback, authentication off by explicit setting.
            .env("KEELSON_AUTH__DISABLED", auth_disabled.to_string())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("keelson listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
            }
        };
        Self { child, url, log_path }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([format!("-{signal}"), self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for exit, bounded.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit in {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").trim_start_matches("https://").to_string()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}
