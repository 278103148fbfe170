package modelbuild

import (
	"encoding/binary"
	"math"

	"gonum.org/v1/gonum/mat"
	"google.golang.org/protobuf/proto"

	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
	pb "github.com/text2brain/text2brain/functions/internal/modelbuild/onnxpb"
)

// The ONNX versions the graph is written for.
const (
	opsetVersion = 17
	irVersion    = 8
)

// graph accumulates ONNX nodes and initializers.
type graph struct {
	nodes        []*pb.NodeProto
	initializers []*pb.TensorProto
}

func (g *graph) node(op, out string, inputs ...string) string {
	g.nodes = append(g.nodes, &pb.NodeProto{OpType: op, Name: out, Input: inputs, Output: []string{out}})
	return out
}

// float32s stores a constant as float32 raw data (little-endian, as ONNX requires).
func (g *graph) float32s(name string, dims []int64, values []float64) string {
	raw := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(v)))
	}
	g.initializers = append(g.initializers, &pb.TensorProto{Name: name, Dims: dims,
		DataType: int32(pb.TensorProto_FLOAT), RawData: raw})
	return name
}

func (g *graph) int64s(name string, dims []int64, values []int64) string {
	raw := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	g.initializers = append(g.initializers, &pb.TensorProto{Name: name, Dims: dims,
		DataType: int32(pb.TensorProto_INT64), RawData: raw})
	return name
}

func (g *graph) matrix(name string, m mat.Matrix) string {
	r, c := m.Dims()
	values := make([]float64, 0, r*c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			values = append(values, m.At(i, j))
		}
	}
	return g.float32s(name, []int64{int64(r), int64(c)}, values)
}

func tensorInfo(name string, dims ...int64) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &pb.ValueInfoProto{Name: name, Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{
		TensorType: &pb.TypeProto_Tensor{ElemType: int32(pb.TensorProto_FLOAT), Shape: shape}}}}
}

// buildGraph writes the whole numeric path of ../shared/docs/model.md, from the L2-normalised TF-IDF vector
// (1 × features) to the z-map (1 × voxels), as an ONNX graph in float32:
//
//	smoothed = (x · (w·Vn)) · Vᵀ + (1−w)·x
//	xd       = smoothed[:, selected]
//	z        = (xd · coefᵀ) / max(sqrt((xd·G·xdᵀ) · residual_var), 1e-24)
//
// The smoothed vector is a second output because related terms are ranked by it.
func buildGraph(m *neuroquery.Model) ([]byte, error) {
	nFeatures, _ := m.V.Dims()
	nVoxels, d := m.Coef.Dims()
	var g graph

	var wVn mat.Dense
	wVn.Scale(m.SmoothingWeight, m.Vn)
	emb := g.node("MatMul", "embedding", bundle.InputName, g.matrix("smoothing_w_Vn", &wVn))
	back := g.node("MatMul", "smoothing_back", emb, g.matrix("smoothing_Vt", m.V.T()))
	keep := g.node("Mul", "smoothing_keep", bundle.InputName, g.float32s("one_minus_w", nil, []float64{1 - m.SmoothingWeight}))
	smoothed := g.node("Add", bundle.OutputSmooth, back, keep)

	sel := make([]int64, d)
	for i, j := range m.Selected {
		sel[i] = int64(j)
	}
	xd := g.node("Gather", "selected", smoothed, g.int64s("selected_features", []int64{int64(d)}, sel))
	g.nodes[len(g.nodes)-1].Attribute = []*pb.AttributeProto{{Name: "axis", Type: pb.AttributeProto_INT, I: 1}}

	num := g.node("MatMul", "numerator", xd, g.matrix("coef_T", m.Coef.T()))
	xg := g.node("MatMul", "x_gram", xd, g.matrix("gram", m.Gram))
	quad := g.node("ReduceSum", "quadratic_form",
		g.node("Mul", "x_gram_x", xg, xd), g.int64s("axis_1", []int64{1}, []int64{1}))
	variance := g.node("Mul", "variance", quad, g.float32s("residual_var", []int64{int64(nVoxels)}, m.ResidualVar))
	// The floor applies to the standard deviation, as in NeuroQuery's transform_to_z_maps.
	sd := g.node("Max", "sd_floored", g.node("Sqrt", "sd", variance), g.float32s("sd_floor", nil, []float64{1e-24}))
	g.node("Div", bundle.OutputZ, num, sd)

	model := &pb.ModelProto{
		IrVersion:    irVersion,
		ProducerName: "text2brain",
		ModelVersion: 1,
		DocString:    "NeuroQuery-style text-to-brain model: TF-IDF → semantic smoothing → ridge → z-map on the 4 mm MNI grid",
		OpsetImport:  []*pb.OperatorSetIdProto{{Domain: "", Version: opsetVersion}},
		Graph: &pb.GraphProto{
			Name:        "text2brain",
			Node:        g.nodes,
			Initializer: g.initializers,
			Input:       []*pb.ValueInfoProto{tensorInfo(bundle.InputName, 1, int64(nFeatures))},
			Output:      []*pb.ValueInfoProto{tensorInfo(bundle.OutputZ, 1, int64(nVoxels)), tensorInfo(bundle.OutputSmooth, 1, int64(nFeatures))},
		},
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(model)
}
