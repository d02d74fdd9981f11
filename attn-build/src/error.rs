//! The one error type of `attn-build`.

use std::fmt;

/// A shape or type error found while building a [`Graph`](crate::graph::Graph).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    /// The primitive being added (`matmul`, `attention`, ...).
    pub op: &'static str,
    /// What is wrong, naming the operands and their types.
    pub message: String,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message)
    }
}

impl std::error::Error for GraphError {}

/// Everything that can go wrong while compiling kernels.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A kernel's graph is ill-typed.
    Graph {
        /// The kernel.
        kernel: String,
        /// The shape error.
        error: GraphError,
    },
    /// MLIR rejected a kernel at some stage (verification, a pass, translation).
    Mlir {
        /// The kernel.
        kernel: String,
        /// Where the kernel is declared, `file:line`: its `attention!` invocation, or the
        /// `Build::kernel` call of the build script. `None` outside a [`Build`](crate::Build).
        location: Option<String>,
        /// The pipeline stage that failed.
        stage: &'static str,
        /// The diagnostics MLIR emitted, one per line.
        diagnostics: String,
    },
    /// The LLVM/MLIR 22 toolchain is missing or unusable.
    Toolchain(String),
    /// Reading or writing a file failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Archiving the objects failed.
    Archive(String),
    /// The build configuration is invalid (duplicate names, bad identifiers, ...).
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Graph { kernel, error } => write!(f, "kernel `{kernel}`: {error}"),
            Error::Mlir {
                kernel,
                location,
                stage,
                diagnostics,
            } => {
                write!(f, "kernel `{kernel}`")?;
                if let Some(at) = location {
                    write!(f, " (declared at {at})")?;
                }
                write!(f, ": MLIR failed at stage `{stage}`: {diagnostics}")
            }
            Error::Toolchain(m) => write!(f, "LLVM/MLIR toolchain: {m}"),
            Error::Io { context, error } => write!(f, "{context}: {error}"),
            Error::Archive(m) => write!(f, "archiving kernel objects: {m}"),
            Error::Config(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Graph { error, .. } => Some(error),
            Error::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Error {
    /// Records where the failing kernel is declared (`file:line`) in an MLIR error.
    #[cfg_attr(not(feature = "codegen"), allow(dead_code))]
    pub(crate) fn declared_at(mut self, at: &str) -> Self {
        match &mut self {
            Error::Mlir { location, .. } if location.is_none() => *location = Some(at.to_string()),
            _ => {}
        }
        self
    }

    pub(crate) fn io(context: impl Into<String>, error: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            error,
        }
    }
}
