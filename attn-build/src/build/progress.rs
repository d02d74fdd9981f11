//! Progress lines of `ATTN_VERBOSE=1`: `cargo:warning` lines in a build script (Cargo shows them
//! for path and workspace dependencies), plain lines on stderr otherwise.

/// Where and whether progress lines go; copied into every worker thread.
#[derive(Clone, Copy, Debug)]
pub(super) struct Progress {
    /// Print anything at all (`ATTN_VERBOSE=1` or `Build::verbose`).
    pub verbose: bool,
    /// Inside a build script: print `cargo:warning=` lines on stdout.
    pub cargo_metadata: bool,
}

impl Progress {
    /// Prints one line, whole: lines of concurrent workers never interleave (each is one write
    /// under the lock of stdout or stderr).
    pub fn line(&self, line: &str) {
        if !self.verbose {
            return;
        }
        if self.cargo_metadata {
            println!("cargo:warning=attn-build: {line}");
        } else {
            eprintln!("attn-build: {line}");
        }
    }
}
