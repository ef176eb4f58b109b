//! Support code for the examples, end-to-end tests and benchmark of
//! redis-pydict: a private `redis-server` started on a free port.
//!
//! This crate is not published; the library is `redis-pydict`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get a `redis-server` binary, for messages.
pub const INSTALL_HINT: &str = "redis-server was not found on PATH; install it (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_SERVER to its path";

/// A `redis-server` process of our own, on a free loopback port, with no
/// persistence. Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Starts a server, panicking with an install hint if there is no
    /// `redis-server` (tests must fail loudly, never skip).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (e.g.
    /// `["--notify-keyspace-events", "Ex"]`), panicking on failure.
    pub fn start_with(extra_args: &[&str]) -> RedisServer {
        match Self::try_start_with(extra_args) {
            Ok(server) => server,
            Err(e) => panic!("cannot start redis-server: {e}"),
        }
    }

    /// Starts a server, or says why not.
    pub fn try_start_with(extra_args: &[&str]) -> Result<RedisServer, String> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let mut server = RedisServer {
                child: None,
                port,
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        // A directory per server, kept across restarts on the same port (so a
        // server started with `--appendonly yes` finds its data again).
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cmd = Command::new(&binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => INSTALL_HINT.to_owned(),
            _ => format!("{binary}: {e}"),
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "redis-server on port {} exited at start: {status}",
                        self.port
                    ));
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(format!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        ))
    }

    /// The server's working directory (AOF and RDB files, if enabled).
    pub fn dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "redis-pydict-test-{}-{}",
            std::process::id(),
            self.port
        ))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (if running) and starts it again on the same port and
    /// directory: empty, unless it was started with persistence (`--appendonly yes`).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("cannot restart redis-server: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// True when a Redis server answers PING (with any reply) on 127.0.0.1:`port`.
pub fn ping(port: u16) -> bool {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    // Any reply means the server is up: `+PONG`, or `-NOAUTH` with a password.
    let mut buf = [0u8; 1];
    stream.read_exact(&mut buf).is_ok() && (buf[0] == b'+' || buf[0] == b'-')
}
