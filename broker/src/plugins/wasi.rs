//! The WASI 0.2 a plugin instance sees. Plugins built by other toolchains (componentize-py,
//! componentize-js, wasi-libc) import `wasi:*` interfaces for their language runtime, so the
//! host links them, deny by default: no preopened folders, no environment variables, no
//! arguments, no sockets or name lookups, an empty stdin. Clocks and randomness are allowed
//! (runtimes seed their hash tables with them); stdout and stderr go into the broker's log,
//! tagged with the plugin's name, so a Python traceback or a `console.log` is not lost.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// Longest piece of guest output logged as one line; the rest of that write is cut.
const MAX_OUTPUT_LINE: usize = 4096;

/// A `WasiCtx` that grants nothing beyond clocks and randomness.
pub fn sandbox(plugin: &Arc<str>) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(GuestOutput {
            plugin: plugin.clone(),
            stream: Stream::Stdout,
        })
        .stderr(GuestOutput {
            plugin: plugin.clone(),
            stream: Stream::Stderr,
        })
        // The builder's defaults already deny these; saying so keeps the sandbox explicit
        // should a later wasmtime relax a default.
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .allow_blocking_current_thread(false);
    builder.build()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A plugin's stdout or stderr: each write becomes log lines (stdout at info, stderr at warn).
#[derive(Clone)]
struct GuestOutput {
    plugin: Arc<str>,
    stream: Stream,
}

impl GuestOutput {
    fn log(&self, bytes: &[u8]) {
        let cut = bytes.get(..MAX_OUTPUT_LINE).unwrap_or(bytes);
        let text = String::from_utf8_lossy(cut);
        let plugin = &*self.plugin;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match self.stream {
                Stream::Stdout => {
                    tracing::info!(target: "waspmq::plugin", plugin, stream = "stdout", "{line}")
                }
                Stream::Stderr => {
                    tracing::warn!(target: "waspmq::plugin", plugin, stream = "stderr", "{line}")
                }
            }
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.log(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::cli::WasiCliView;
    use wasmtime_wasi::filesystem::WasiFilesystemView;
    use wasmtime_wasi::p2::bindings::cli::environment::Host as Environment;
    use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as Preopens;
    use wasmtime_wasi::{WasiCtxView, WasiView};

    struct Guest {
        ctx: WasiCtx,
        table: ResourceTable,
    }

    impl WasiView for Guest {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.ctx,
                table: &mut self.table,
            }
        }
    }

    #[test]
    fn the_sandbox_grants_no_folder_environment_variable_or_argument() {
        let mut guest = Guest {
            ctx: sandbox(&Arc::from("test")),
            table: ResourceTable::new(),
        };
        // The premise: the host process does have an environment (cargo sets CARGO_* for tests).
        assert!(std::env::vars().next().is_some());
        let mut cli = guest.cli();
        assert_eq!(cli.get_environment().ok(), Some(Vec::new()));
        assert_eq!(cli.get_arguments().ok(), Some(Vec::new()));
        assert_eq!(cli.initial_cwd().ok(), Some(None));
        let folders = guest.filesystem().get_directories().map(|d| d.len()).ok();
        assert_eq!(folders, Some(0));
    }
}
