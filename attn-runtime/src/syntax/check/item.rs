//! Checking whole kernels and invocations.

use super::super::MAX_INPUTS;
use super::super::kernel::{Input, Kernel, Value};
use super::super::parse::{Body, Invocation, KernelItem};
use super::attention::AttentionCall;
use super::{Builder, at_span, check_shape, show};
use crate::DType;
use proc_macro2::Span;
use std::collections::HashMap;
use syn::ext::IdentExt;

impl KernelItem {
    /// The kernel's name, without any `r#`.
    pub fn name_string(&self) -> String {
        self.name.unraw().to_string()
    }

    /// Infers every shape and element type, and checks the declaration.
    pub fn check(&self) -> syn::Result<Kernel> {
        let name = self.name_string();
        let dtype = self.options.dtype.map_or(DType::F32, |d| d.0);
        if self.params.len() > MAX_INPUTS {
            return Err(syn::Error::new(
                self.params[MAX_INPUTS].name.span(),
                format!("a kernel takes at most {MAX_INPUTS} inputs"),
            ));
        }
        let mut kernel = Kernel {
            name,
            dtype,
            inputs: Vec::new(),
            nodes: Vec::new(),
            output: Value::Input(0),
        };
        let mut env = HashMap::new();
        let mut errors: Option<syn::Error> = None;
        let mut add_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        for (i, p) in self.params.iter().enumerate() {
            let pname = p.name.unraw().to_string();
            let shape = match check_shape(&format!("input `{pname}`"), &p.shape) {
                Ok(s) => s,
                Err(e) => {
                    add_err(e);
                    Vec::new()
                }
            };
            if pname == "out" {
                add_err(syn::Error::new(
                    p.name.span(),
                    "`out` is reserved for the kernel's output: rename this input",
                ));
            }
            if env.insert(pname.clone(), Value::Input(i)).is_some() {
                add_err(syn::Error::new(
                    p.name.span(),
                    format!("input `{pname}` is declared twice"),
                ));
            }
            kernel.inputs.push(Input {
                name: pname,
                shape,
                dtype,
            });
        }
        let declared = check_shape("the output", &self.output);
        if let Err(e) = &declared {
            add_err(e.clone());
        }
        if let Some(e) = errors {
            return Err(e);
        }
        let declared = declared?;
        let n_inputs = kernel.inputs.len();
        let mut b = Builder {
            kernel,
            env,
            input_uses: vec![None; n_inputs],
            defaults: self.options.attention,
            kv_heads: self.options.kv_heads,
            attentions: 0,
            declared: self.params.iter().map(|p| p.elem).collect(),
        };
        let out = match &self.body {
            None => {
                let n = self.params.len();
                if !(3..=6).contains(&n) {
                    return Err(syn::Error::new(
                        self.name.span(),
                        format!(
                            "a kernel without a body computes `attention(q, k, v)` and takes exactly 3 inputs, then optionally inputs named `mask`, `sinks` and `alibi` (3 to 6 in all), not {n}; write a body `{{ ... }}` for other computations"
                        ),
                    ));
                }
                let shape = |i: usize| at_span(self.params[i].shape.span);
                // mask, sinks, alibi
                let mut operands: [Option<(Value, super::At)>; 3] = [None, None, None];
                for (i, p) in self.params.iter().enumerate().skip(3) {
                    let pname = p.name.unraw().to_string();
                    let Some(slot) = ["mask", "sinks", "alibi"].iter().position(|o| *o == pname)
                    else {
                        return Err(syn::Error::new(
                            p.name.span(),
                            format!(
                                "an input after q, k and v of a kernel without a body is the attention's mask, sink logits or ALiBi slopes and must be named `mask`, `sinks` or `alibi`, not `{pname}`"
                            ),
                        ));
                    };
                    operands[slot] = Some((Value::Input(i), shape(i)));
                }
                let [mask, sinks, alibi] = operands;
                b.attention(AttentionCall {
                    q: (Value::Input(0), shape(0)),
                    k: (Value::Input(1), shape(1)),
                    v: (Value::Input(2), shape(2)),
                    mask,
                    sinks,
                    alibi,
                    options: self.options.attention,
                    mods: Vec::new(),
                    at: quote::ToTokens::to_token_stream(&self.name),
                })?
            }
            Some(Body { lets, result }) => {
                for (name, e) in lets {
                    let v = b.eval(e)?;
                    b.env.insert(name.unraw().to_string(), v);
                }
                b.eval(result)?
            }
        };
        if b.attentions == 0 {
            for (option, span) in [
                ("causal", self.options.attention_span("causal")),
                ("window", self.options.attention_span("window")),
                ("softcap", self.options.attention_span("softcap")),
                ("kv_heads", self.options.kv_heads.map(|k| k.1)),
            ] {
                if let Some(span) = span {
                    return Err(syn::Error::new(
                        span,
                        format!(
                            "`{option}` is an option of `attention`, which this kernel does not compute"
                        ),
                    ));
                }
            }
        }
        b.use_as(out, dtype, "", &at_span(self.output.span))?;
        b.kernel.output = out;
        for ((input, used), declared) in b
            .kernel
            .inputs
            .iter_mut()
            .zip(&b.input_uses)
            .zip(&b.declared)
        {
            input.dtype = used.map(|u| u.0).or(declared.map(|d| d.0)).unwrap_or(dtype);
        }
        let inferred = b.kernel.output_shape().to_vec();
        if inferred != declared {
            return Err(syn::Error::new(
                self.output.span,
                format!(
                    "the declared output shape {} differs from the inferred shape {}",
                    show(&declared),
                    show(&inferred)
                ),
            ));
        }
        Ok(b.kernel)
    }
}

impl Invocation {
    /// Checks every kernel, and that names are unique (including against the generated
    /// `<name>_into` functions). Reports every failing kernel at once.
    pub fn check(&self) -> syn::Result<Vec<Kernel>> {
        let mut errors: Option<syn::Error> = None;
        let mut add_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        let mut seen: HashMap<String, Span> = HashMap::new();
        for item in &self.kernels {
            let name = item.name_string();
            if let Some(first) = seen.get(&name) {
                let mut e = syn::Error::new(
                    item.name.span(),
                    format!("duplicate kernel name `{name}`: kernel names must be unique"),
                );
                e.combine(syn::Error::new(
                    *first,
                    format!("`{name}` is first defined here"),
                ));
                add_err(e);
            }
            seen.insert(name.clone(), item.name.span());
        }
        for item in &self.kernels {
            let name = item.name_string();
            if let Some(base) = name.strip_suffix("_into")
                && seen.contains_key(base)
            {
                add_err(syn::Error::new(
                    item.name.span(),
                    format!(
                        "kernel name `{name}` collides with the `_into` function generated for kernel `{base}`"
                    ),
                ));
            }
        }
        let mut out = Vec::new();
        for item in &self.kernels {
            match item.check() {
                Ok(k) => out.push(k),
                Err(e) => add_err(e),
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
