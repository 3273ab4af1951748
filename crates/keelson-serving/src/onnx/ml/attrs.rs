//! Reading a node's attributes with their declared types checked: a model that stores an
//! attribute under the wrong type is broken, and says so at load rather than misbehaving later.

use super::context::OpContext;
use super::proto_tensor::{self, TensorValues};
use super::MlOpError;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto};

/// The attributes of one node; absent lists read as empty, absent scalars as `None`.
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
    ctx: &'a OpContext,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a NodeProto, ctx: &'a OpContext) -> Attrs<'a> {
        Attrs { node, ctx }
    }

    /// An InvalidModel error about this node.
    pub(crate) fn error(&self, message: impl Into<String>) -> MlOpError {
        self.ctx.model(message)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, MlOpError> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }

    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, MlOpError> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f))
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, MlOpError> {
        self.typed(name, AttributeType::String)?
            .map(|a| {
                String::from_utf8(a.s.clone()).map_err(|_| self.ctx.model(format!("attribute `{name}` is not UTF-8")))
            })
            .transpose()
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Vec<i64>, MlOpError> {
        Ok(self.typed(name, AttributeType::Ints)?.map(|a| a.ints.clone()).unwrap_or_default())
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Vec<f32>, MlOpError> {
        Ok(self.typed(name, AttributeType::Floats)?.map(|a| a.floats.clone()).unwrap_or_default())
    }

    /// String lists stay raw bytes: labels are whatever the exporter wrote.
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<Vec<u8>>, MlOpError> {
        Ok(self.typed(name, AttributeType::Strings)?.map(|a| a.strings.clone()).unwrap_or_default())
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<TensorValues>, MlOpError> {
        let Some(attribute) = self.typed(name, AttributeType::Tensor)? else {
            return Ok(None);
        };
        let Some(tensor) = attribute.t.as_ref() else {
            return Err(self.ctx.model(format!("attribute `{name}` holds no tensor")));
        };
        proto_tensor::decode(tensor).map(Some).map_err(|why| self.ctx.model(format!("attribute `{name}`: {why}")))
    }

    /// A real-valued list given either as `floats_name` (FLOATS) or, since ai.onnx.ml opset 3,
    /// as the double tensor `tensor_name`; giving both is ambiguous and refused.
    pub(crate) fn reals(&self, floats_name: &str, tensor_name: &str) -> Result<Vec<f64>, MlOpError> {
        let floats = self.floats(floats_name)?;
        let Some(tensor) = self.tensor(tensor_name)? else {
            return Ok(floats.into_iter().map(f64::from).collect());
        };
        if !floats.is_empty() {
            return Err(self.ctx.model(format!("both `{floats_name}` and `{tensor_name}` are given")));
        }
        tensor
            .reals()
            .ok_or_else(|| self.ctx.model(format!("attribute `{tensor_name}` must hold floating-point values")))
    }

    fn find(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// The attribute when present; an error when it is declared with another type. IR versions
    /// before 0.0.2 did not declare types (0), so those are read as the expected type.
    fn typed(&self, name: &str, expected: AttributeType) -> Result<Option<&'a AttributeProto>, MlOpError> {
        let Some(attribute) = self.find(name) else {
            return Ok(None);
        };
        if !attribute.ref_attr_name.is_empty() {
            return Err(self.ctx.model(format!("attribute `{name}` refers to a function attribute")));
        }
        if attribute.r#type != expected as i32 && attribute.r#type != AttributeType::Undefined as i32 {
            return Err(self.ctx.model(format!(
                "attribute `{name}` must be {}, not type {}",
                expected.as_str_name(),
                attribute.r#type
            )));
        }
        Ok(Some(attribute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::ml::test_support::*;

    fn with<T>(attributes: Vec<AttributeProto>, read: impl FnOnce(&Attrs) -> T) -> T {
        let node = node("Scaler", attributes);
        let ctx = OpContext::of(&node);
        read(&Attrs::new(&node, &ctx))
    }

    #[test]
    fn reads_each_kind_and_defaults_when_absent() {
        let attributes = vec![
            attr_int("i", 3),
            attr_float("f", 0.5),
            attr_string("s", "SUM"),
            attr_ints("is", &[1, 2]),
            attr_floats("fs", &[1.5]),
            attr_strings("ss", &["a", "b"]),
            attr_tensor_f64("t", &[0.25, 4.0]),
        ];
        with(attributes, |a| {
            assert_eq!(a.int("i"), Ok(Some(3)));
            assert_eq!(a.float("f"), Ok(Some(0.5)));
            assert_eq!(a.string("s"), Ok(Some("SUM".to_string())));
            assert_eq!(a.ints("is"), Ok(vec![1, 2]));
            assert_eq!(a.floats("fs"), Ok(vec![1.5]));
            assert_eq!(a.strings("ss"), Ok(vec![b"a".to_vec(), b"b".to_vec()]));
            assert_eq!(a.tensor("t"), Ok(Some(TensorValues::F64(vec![0.25, 4.0]))));
            assert_eq!(a.reals("fs", "absent"), Ok(vec![1.5]));
            assert_eq!(a.reals("absent", "t"), Ok(vec![0.25, 4.0]));
            assert_eq!(a.ints("absent"), Ok(vec![]));
            assert_eq!(a.int("absent"), Ok(None));
            assert!(a.has("i") && !a.has("absent"));
        });
    }

    #[test]
    fn refuses_mistyped_or_ambiguous_attributes() {
        let attributes = vec![attr_floats("is", &[1.0]), attr_floats("fs", &[1.0]), attr_tensor_f64("t", &[1.0])];
        with(attributes, |a| {
            assert!(matches!(a.ints("is"), Err(MlOpError::InvalidModel { .. })));
            assert!(matches!(a.reals("fs", "t"), Err(MlOpError::InvalidModel { .. })));
        });
        let mut bad_utf8 = attr_string("s", "x");
        bad_utf8.s = vec![0xff, 0xfe];
        with(vec![bad_utf8], |a| assert!(a.string("s").is_err()));
        let mut no_tensor = attr_tensor_f64("t", &[1.0]);
        no_tensor.t = None;
        with(vec![no_tensor], |a| assert!(a.tensor("t").is_err()));
    }
}
