//! The physical codec of a Cuve cluster (gateway, scheduler, executors): Cuve's
//! [`SlicedExec`] (the co-located plans as the cluster runs them), everything else by
//! Ballista's own codec (its shuffles, and through it DataFusion's nodes).
//!
//! A `SlicedExec` travels as its subtree (encoded with this codec, its file scans reading
//! nothing) and its description; its children, the sliced scans, are encoded as any child.

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use cuve_engine::planner::SlicedExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

/// What a Cuve node's encoding starts with (Ballista's own encodings are protobuf messages,
/// which never start with these bytes: 0xFF is not a valid protobuf tag start).
const MAGIC: &[u8] = b"\xffcuve-sliced-v1\0";

#[derive(Debug, Default)]
pub struct CuveCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl CuveCodec {
    pub fn shared() -> Arc<dyn PhysicalExtensionCodec> {
        Arc::new(CuveCodec::default())
    }
}

fn corrupt(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("a Cuve plan node arrived damaged: {what}"))
}

impl PhysicalExtensionCodec for CuveCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(rest) = buf.strip_prefix(MAGIC) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("no description length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupt("the description is cut short"));
        }
        let (description, template) = rest.split_at(len);
        let description =
            String::from_utf8(description.to_vec()).map_err(|_| corrupt("the description"))?;
        let template = physical_plan_from_bytes_with_extension_codec(template, ctx, self)?;
        Ok(Arc::new(SlicedExec::try_new(
            template,
            inputs.to_vec(),
            description,
        )?))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(sliced) = (node.as_ref() as &dyn std::any::Any).downcast_ref::<SlicedExec>()
        else {
            return self.ballista.try_encode(node, buf, proto_converter);
        };
        let template =
            physical_plan_to_bytes_with_extension_codec(sliced.template().clone(), self)?;
        let description = sliced.description().as_bytes();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(description.len() as u32).to_le_bytes());
        buf.extend_from_slice(description);
        buf.extend_from_slice(&template);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::physical_plan::union::UnionExec;

    fn scan(name: &str, groups: usize) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true)]));
        let groups = (0..groups)
            .map(|i| {
                FileGroup::new(vec![PartitionedFile::new(
                    format!("{name}/{i}.parquet"),
                    10,
                )])
            })
            .collect();
        let cfg = FileScanConfigBuilder::new(
            ObjectStoreUrl::local_filesystem(),
            Arc::new(ParquetSource::new(schema)),
        )
        .with_file_groups(groups)
        .build();
        DataSourceExec::from_data_source(cfg)
    }

    /// Ballista trims every scan of a stage to a task's slices: a `SlicedExec`'s scans alike,
    /// so slice i of one side still meets slice i of the other; and the node travels.
    #[test]
    fn trimmed_alike_and_round_trips() {
        use datafusion::physical_plan::displayable;
        use datafusion_proto::physical_plan::AsExecutionPlan;
        use datafusion_proto::protobuf::PhysicalPlanNode;
        let template = UnionExec::try_new(vec![scan("a", 1), scan("b", 1)]).unwrap();
        let sliced: Arc<dyn ExecutionPlan> = Arc::new(
            SlicedExec::try_new(template, vec![scan("a", 4), scan("b", 4)], "t".into()).unwrap(),
        );
        let trimmed = ballista_scheduler::state::task_builder::restrict_plan_to_partitions(
            sliced.clone(),
            &[1, 2],
        )
        .unwrap();
        let text = displayable(trimmed.as_ref()).indent(true).to_string();
        assert!(text.contains("[[a/1.parquet], [a/2.parquet]]"), "{text}");
        assert!(text.contains("[[b/1.parquet], [b/2.parquet]]"), "{text}");
        assert_eq!(trimmed.properties().partitioning.partition_count(), 2);

        let codec = CuveCodec::default();
        let proto = PhysicalPlanNode::try_from_physical_plan(sliced.clone(), &codec).unwrap();
        let ctx = datafusion::prelude::SessionContext::new().task_ctx();
        let back = proto.try_into_physical_plan(&ctx, &codec).unwrap();
        assert!((back.as_ref() as &dyn std::any::Any).is::<SlicedExec>());
        assert_eq!(
            displayable(back.as_ref()).indent(true).to_string(),
            displayable(sliced.as_ref()).indent(true).to_string()
        );
        // Damaged bytes are an error, not a panic.
        let e = codec
            .try_decode(
                b"\xffcuve-sliced-v1\0\x09",
                &[],
                &ctx,
                &datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {},
            )
            .unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
