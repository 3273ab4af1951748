//! Placeholder: compiles search ASTs to parameterised SQL (being written).
