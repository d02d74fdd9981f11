// Compiles every `attn::attention!` kernel of the listed files through MLIR, ahead of time, and
// links them into this crate. Unchanged kernels come from a cache and are never recompiled.
fn main() {
    let result = attn_build::Build::new()
        .file("src/lib.rs")
        .file("src/heads.rs")
        .file("src/options.rs")
        .file("src/variants.rs")
        .file("src/mods.rs")
        .compile("downstream_kernels");
    if let Err(e) = result {
        for line in e.to_string().lines() {
            println!("cargo::error={line}");
        }
    }
}
