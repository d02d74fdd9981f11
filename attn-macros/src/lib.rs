//! The `attention!` macro of `attn`: declare a kernel with static shapes, and get typed functions
//! that call the machine code the build script compiled for it ahead of time.
//!
//! ```ignore
//! attn::attention! {
//!     /// Single-head attention over 128 tokens, head dim 64.
//!     pub fn window(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];
//! }
//! // pub fn window(q: &[[f32; 64]; 128], k: .., v: ..) -> Box<[[f32; 64]; 128]>
//! // pub fn window_into(q: &[[f32; 64]; 128], k: .., v: .., out: &mut [[f32; 64]; 128])
//!
//! attn::attention! {
//!     /// Causal grouped-query attention in bf16, with an additive f32 mask.
//!     #[attn(causal, kv_heads = 2, dtype = bf16)]
//!     pub fn gqa(q: [1, 8, 16, 64], k: [1, 2, 16, 64], v: [1, 2, 16, 64], mask: [16, 16]) -> [1, 8, 16, 64];
//! }
//! // pub fn gqa(q: &[[[[attn::half::bf16; 64]; 16]; 8]; 1], .., mask: &[[f32; 16]; 16])
//! //     -> Box<[[[[attn::half::bf16; 64]; 16]; 8]; 1]>
//! ```
//!
//! The grammar, shape inference and symbol names come from `attn_runtime::syntax`, the module the
//! build helper (`attn_build::Build::file`) uses too, so the two cannot disagree; the build script
//! leaves a manifest of what it compiled in `OUT_DIR`, which this macro reads to report a kernel
//! that was not compiled. This crate links no LLVM.

use attn_runtime::DType;
use attn_runtime::syntax::{Invocation, Kernel, KernelItem, Manifest};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use std::path::{Path, PathBuf};

/// Declares ahead-of-time compiled attention kernels with static shapes.
///
/// Each kernel `name` becomes `name(inputs..) -> Box<output array>` and
/// `name_into(inputs.., out: &mut output array)`; see the `attn` crate's documentation.
#[proc_macro]
pub fn attention(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let ctx = Context::from_env();
    expand(input.into(), &ctx).into()
}

/// What the expansion needs from its environment.
#[derive(Clone, Debug, Default)]
struct Context {
    /// `OUT_DIR` of the crate being compiled (set when it has a build script).
    out_dir: Option<PathBuf>,
    /// `CARGO_MANIFEST_DIR` of that crate.
    manifest_dir: Option<PathBuf>,
    /// The source file of the invocation, as rustc knows it.
    file: Option<PathBuf>,
    /// Documentation builds (`DOCS_RS`) compile no kernel: skip the manifest check.
    docs_rs: bool,
}

impl Context {
    fn from_env() -> Self {
        let cwd = std::env::current_dir().ok();
        let file = proc_macro::Span::call_site()
            .local_file()
            .map(|f| match &cwd {
                Some(c) if f.is_relative() => c.join(f),
                _ => f,
            });
        Context {
            out_dir: std::env::var_os("OUT_DIR").map(PathBuf::from),
            manifest_dir: std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
            file,
            docs_rs: std::env::var_os("DOCS_RS").is_some(),
        }
    }

    /// The invocation's file as a build script names it: relative to the package root.
    fn display_file(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        let abs = file.canonicalize().unwrap_or_else(|_| file.clone());
        let rel = self
            .manifest_dir
            .as_ref()
            .and_then(|m| m.canonicalize().ok())
            .and_then(|m| abs.strip_prefix(m).ok().map(Path::to_path_buf));
        Some(rel.unwrap_or(abs).display().to_string())
    }
}

fn expand(input: TokenStream, ctx: &Context) -> TokenStream {
    let inv: Invocation = match syn::parse2(input) {
        Ok(inv) => inv,
        Err(e) => return e.to_compile_error(),
    };
    if inv.kernels.is_empty() {
        return syn::Error::new(
            Span::call_site(),
            "`attention!` declares no kernel: write `pub fn name(q: [..], k: [..], v: [..]) -> [..];`",
        )
        .to_compile_error();
    }
    let kernels = match inv.check() {
        Ok(k) => k,
        Err(e) => return e.to_compile_error(),
    };
    let manifest = match &ctx.out_dir {
        Some(dir) if !ctx.docs_rs => Manifest::read_dir(dir).unwrap_or(None),
        _ => None,
    };
    let mut out = TokenStream::new();
    for (item, kernel) in inv.kernels.iter().zip(&kernels) {
        if !ctx.docs_rs
            && let Err(message) = built(ctx, manifest.as_ref(), kernel)
        {
            out.extend(syn::Error::new(item.name.span(), message).to_compile_error());
        }
        out.extend(generate(item, kernel));
    }
    out
}

/// Whether the build script compiled `kernel`, or a message saying what to do.
fn built(ctx: &Context, manifest: Option<&Manifest>, kernel: &Kernel) -> Result<(), String> {
    let name = &kernel.name;
    let file = ctx.display_file();
    let shown = file.as_deref().unwrap_or("src/lib.rs");
    let add_file = format!(
        "add `.file(\"{shown}\")` to the `attn_build::Build` of build.rs{}",
        if file.is_none() {
            " (the file that contains this `attention!`)"
        } else {
            ""
        }
    );
    if ctx.out_dir.is_none() {
        return Err(format!(
            "kernel `{name}` is not compiled: this crate has no build script. Add `attn-build` to \
             [build-dependencies] and a build.rs with \
             `attn_build::Build::new().file(\"{shown}\").compile(\"kernels\").unwrap();`"
        ));
    }
    let Some(m) = manifest else {
        return Err(format!(
            "kernel `{name}` is not compiled: the build script compiled no `attention!` kernels; {add_file}"
        ));
    };
    let symbol = kernel.symbol();
    if m.kernels.iter().any(|k| k.symbol == symbol) {
        return Ok(());
    }
    if let Some(d) = m.duplicates.iter().find(|d| &d.name == name) {
        return Err(format!(
            "kernel name `{name}` is defined more than once among the kernels of this build ({}): \
             kernel names must be unique",
            d.locations.join(", ")
        ));
    }
    let scanned = ctx
        .file
        .as_ref()
        .and_then(|f| f.canonicalize().ok())
        .is_some_and(|f| m.files.iter().any(|s| Path::new(&s.path) == f.as_path()));
    if let Some(other) = m.kernels.iter().find(|k| &k.name == name) {
        return Err(format!(
            "the build script compiled a different definition of kernel `{name}` (at {}: `{}`), \
             not this one (`{}`)",
            other.location,
            other.canonical,
            kernel.canonical()
        ));
    }
    if scanned {
        return Err(format!(
            "the build script scanned `{shown}` but did not find kernel `{name}`: write the \
             invocation as `attention! {{ .. }}` or `attn::attention! {{ .. }}` at module level \
             (inline modules are fine; inside functions or other macros it is not seen)"
        ));
    }
    Err(format!(
        "kernel `{name}` is not compiled by the build script: {add_file}"
    ))
}

/// The Rust element type of `dtype`: `f32`, `f64`, `i32` (the integer tables of mods), or
/// `half`'s types through `attn`'s re-export (users need no dependency on `half`).
fn element_type(dtype: DType) -> TokenStream {
    match dtype {
        DType::F64 => quote!(f64),
        DType::BF16 => quote!(::attn::half::bf16),
        DType::F16 => quote!(::attn::half::f16),
        DType::I32 => quote!(i32),
        _ => quote!(f32),
    }
}

/// `attn_runtime::DType::<variant>` for `dtype`.
fn dtype_variant(dtype: DType) -> proc_macro2::Ident {
    let name = match dtype {
        DType::F64 => "F64",
        DType::BF16 => "BF16",
        DType::F16 => "F16",
        DType::I32 => "I32",
        _ => "F32",
    };
    proc_macro2::Ident::new(name, Span::call_site())
}

/// `[[f32; 64]; 128]` for `[128, 64]` of f32.
fn array_type(dtype: DType, shape: &[usize]) -> TokenStream {
    let mut t = element_type(dtype);
    for d in shape.iter().rev() {
        t = quote!([#t; #d]);
    }
    t
}

fn generate(item: &KernelItem, kernel: &Kernel) -> TokenStream {
    let rt = quote!(::attn::__private);
    let name = &item.name;
    let name_str = &kernel.name;
    let into = format_ident!("{}_into", item.name_string(), span = name.span());
    let vis = &item.vis;
    let attrs = &item.attrs;
    // `_into` returns nothing: a `#[must_use]` of the kernel applies to the allocating form only.
    let into_attrs: Vec<&syn::Attribute> = attrs
        .iter()
        .filter(|a| !a.path().is_ident("must_use"))
        .collect();
    let has_docs = attrs.iter().any(|a| a.path().is_ident("doc"));
    let must_use = if attrs.iter().any(|a| a.path().is_ident("must_use")) {
        quote!()
    } else {
        quote!(#[must_use])
    };
    let sig = {
        let ins = kernel
            .inputs
            .iter()
            .map(|i| format!("{}: {}{:?}", i.name, i.dtype, i.shape))
            .collect::<Vec<_>>()
            .join(", ");
        let mut options = Vec::new();
        let attention = &item.options.attention;
        if attention.causal {
            options.push("causal".to_string());
        }
        if let Some((l, r)) = attention.window {
            options.push(format!("window ({l}, {r})"));
        }
        if let Some(c) = attention.softcap {
            options.push(format!("softcap {c}"));
        }
        if let Some((n, _)) = item.options.kv_heads {
            options.push(format!("{n} key/value heads"));
        }
        let options = if options.is_empty() {
            String::new()
        } else {
            format!(" ({})", options.join(", "))
        };
        format!(
            "`({ins}) -> {}{:?}`{options}",
            kernel.output_dtype(),
            kernel.output_shape()
        )
    };
    let doc_main = if has_docs {
        quote!(#[doc = ""] #[doc = concat!("Kernel ", #sig, ", compiled ahead of time by the build script.")])
    } else {
        quote!(#[doc = concat!("Kernel `", #name_str, "` ", #sig, ", compiled ahead of time by the build script.")])
    };
    let doc_into = {
        let line =
            format!("Like [`{name_str}`], writing the result into `out`; allocates nothing.");
        if has_docs {
            quote!(#[doc = ""] #[doc = #line])
        } else {
            quote!(#[doc = #line])
        }
    };

    let params: Vec<&syn::Ident> = item.params.iter().map(|p| &p.name).collect();
    let types: Vec<TokenStream> = kernel
        .inputs
        .iter()
        .map(|i| array_type(i.dtype, &i.shape))
        .collect();
    let out_ty = array_type(kernel.output_dtype(), kernel.output_shape());
    let in_dtypes: Vec<proc_macro2::Ident> = kernel
        .inputs
        .iter()
        .map(|i| dtype_variant(i.dtype))
        .collect();
    let out_dtype = dtype_variant(kernel.output_dtype());
    let shapes: Vec<TokenStream> = kernel
        .inputs
        .iter()
        .map(|i| {
            let d = &i.shape;
            quote!(&[#(#d),*])
        })
        .collect();
    let in_names: Vec<&String> = kernel.inputs.iter().map(|i| &i.name).collect();
    let ranks: Vec<usize> = kernel.inputs.iter().map(|i| i.shape.len()).collect();
    let out_shape = kernel.output_shape();
    let out_rank = out_shape.len();
    let n_args = kernel.inputs.len() + 1;
    let variant = format_ident!("A{n_args}");
    let link = format!("_mlir_ciface_{}", kernel.symbol());

    // Internal names are hygienic: they cannot clash with the user's input names.
    let ms = Span::mixed_site();
    let views: Vec<syn::Ident> = (0..params.len())
        .map(|i| syn::Ident::new(&format!("__attn_view{i}"), ms))
        .collect();
    let abi_params: Vec<syn::Ident> = (0..n_args)
        .map(|i| syn::Ident::new(&format!("a{i}"), ms))
        .collect();
    let out_view = syn::Ident::new("__attn_out", ms);
    let descs = syn::Ident::new("__attn_args", ms);
    let boxed = syn::Ident::new("__attn_boxed", ms);
    let out_param = syn::Ident::new("out", name.span());
    let msg = format!("attn kernel `{name_str}`");

    // Generated tokens keep the macro's own span (so lints such as `unsafe_code` treat them as
    // the macro's code); the user's names keep theirs (so type errors point at the kernel).
    quote! {
        #(#attrs)*
        #doc_main
        #must_use
        #vis fn #name(#(#params: &#types),*) -> ::std::boxed::Box<#out_ty> {
            let mut #boxed = #rt::array::zeroed_box::<#out_ty>();
            #into(#(#params,)* &mut #boxed);
            #boxed
        }

        #(#into_attrs)*
        #doc_into
        #vis fn #into(#(#params: &#types,)* #out_param: &mut #out_ty) {
            unsafe extern "C" {
                #[link_name = #link]
                fn __attn_entry(#(#abi_params: *mut ::core::ffi::c_void),*);
            }
            static __ATTN_ARGS: [#rt::ffi::ArgSpec; #n_args] = [
                #(#rt::ffi::ArgSpec::input(#in_names, #rt::DType::#in_dtypes, #ranks),)*
                #rt::ffi::ArgSpec::output("out", #rt::DType::#out_dtype, #out_rank),
            ];
            // SAFETY: `__attn_entry` is the C interface of the MLIR function that attn-build
            // compiled for this very kernel: the symbol hashes the canonical spec (names, element
            // types, static shapes, computation and its options) and the attn-runtime version, so a build that compiled anything
            // else does not link. It takes one pointer to a memref descriptor per argument, the
            // inputs and then the output, with the element types and ranks listed in
            // `__ATTN_ARGS` (the element types of the argument types above); it reads only
            // the inputs, writes only the elements of the output, and keeps no state.
            static __ATTN_KERNEL: #rt::ffi::Kernel = unsafe {
                #rt::ffi::Kernel::new(
                    #name_str,
                    #rt::ffi::KernelFn::#variant(__attn_entry),
                    &__ATTN_ARGS,
                )
            };
            #(
                let #views = #rt::TensorView::new(#rt::array::flat(#params), #shapes)
                    .expect(#msg);
            )*
            let mut #out_view = #rt::TensorViewMut::new(#rt::array::flat_mut(#out_param), &[#(#out_shape),*])
                .expect(#msg);
            let mut #descs = [
                #(#rt::DynMemRef::input(&#views).expect(#msg),)*
                #rt::DynMemRef::output(&mut #out_view).expect(#msg),
            ];
            if let ::core::result::Result::Err(e) = __ATTN_KERNEL.launch(&mut #descs) {
                ::core::panic!("{}", e);
            }
        }
    }
}

#[cfg(test)]
mod tests;
