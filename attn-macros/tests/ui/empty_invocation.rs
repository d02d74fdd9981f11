attn::attention! {}

fn main() {}
