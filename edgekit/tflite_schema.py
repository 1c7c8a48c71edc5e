"""Tables of the TFLite flatbuffer schema that :mod:`edgekit.tflite` needs.

Transcribed from TensorFlow's ``tensorflow/compiler/mlir/lite/schema/schema.fbs`` (Apache-2.0,
Copyright The TensorFlow Authors). Enum values and table field ids never change once published:
new members are only appended, so these tables stay valid for older files and unknown (newer)
values are reported by number instead of failing.

Field ids are flatbuffer *slots*: a ``union`` field takes two slots, ``<name>_type`` (ubyte)
followed by the value (offset to the table).
"""

from __future__ import annotations

# enum BuiltinOperator : int32 (index = value).
_OPERATOR_NAMES = """
    ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
    EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
    LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
    RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM
    CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND
    SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE
    BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM
    CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT
    SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT
    SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND
    LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE
    RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL
    REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE
    MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5
    SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM
    CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND
    HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE
    ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL
    GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX
    UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT
    STABLEHLO_LOGISTIC STABLEHLO_ADD STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM
    STABLEHLO_RESHAPE STABLEHLO_CLAMP STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM
    STABLEHLO_CONVOLUTION STABLEHLO_SLICE STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS
    STABLEHLO_AND STABLEHLO_COSINE STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG
    STABLEHLO_MINIMUM STABLEHLO_NEGATE STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER
    STABLEHLO_RSQRT STABLEHLO_SELECT STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER
    STABLEHLO_COMPARE STABLEHLO_CONVERT STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE
    STABLEHLO_PAD STABLEHLO_IOTA STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT
    STABLEHLO_WHILE STABLEHLO_GATHER STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR
    REDUCE_WINDOW STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT STABLEHLO_CASE"""
BUILTIN_OPERATORS: tuple[str, ...] = tuple(_OPERATOR_NAMES.split())
CUSTOM_CODE = 32
# OperatorCode.deprecated_builtin_code is an int8; codes >= this value only live in builtin_code.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# enum TensorType : byte -> (numpy-style name, bits per element; 0 = variable size).
TENSOR_TYPES: tuple[tuple[str, int], ...] = (
    ("float32", 32), ("float16", 16), ("int32", 32), ("uint8", 8), ("int64", 64),
    ("string", 0), ("bool", 8), ("int16", 16), ("complex64", 64), ("int8", 8),
    ("float64", 64), ("complex128", 128), ("uint64", 64), ("resource", 0), ("variant", 0),
    ("uint32", 32), ("uint16", 16), ("int4", 4), ("bfloat16", 16), ("int2", 2), ("uint4", 4),
)  # fmt: skip

PADDING = ("SAME", "VALID")
ACTIVATION = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
FC_WEIGHTS_FORMAT = ("DEFAULT", "SHUFFLED4x16INT8")
MIRROR_PAD_MODE = ("REFLECT", "SYMMETRIC")

# Field ids of the tables the reader walks.
MODEL = {"version": 0, "operator_codes": 1, "subgraphs": 2, "description": 3, "buffers": 4,
         "metadata_buffer": 5, "metadata": 6, "signature_defs": 7}  # fmt: skip
OPERATOR_CODE = {"deprecated_builtin_code": 0, "custom_code": 1, "version": 2, "builtin_code": 3}
SUBGRAPH = {"tensors": 0, "inputs": 1, "outputs": 2, "operators": 3, "name": 4}
TENSOR = {"shape": 0, "type": 1, "buffer": 2, "name": 3, "quantization": 4, "is_variable": 5,
          "sparsity": 6, "shape_signature": 7, "has_rank": 8}  # fmt: skip
QUANTIZATION = {"min": 0, "max": 1, "scale": 2, "zero_point": 3, "details_type": 4,
                "details": 5, "quantized_dimension": 6}  # fmt: skip
OPERATOR = {"opcode_index": 0, "inputs": 1, "outputs": 2, "builtin_options_type": 3,
            "builtin_options": 4, "custom_options": 5, "custom_options_format": 6,
            "mutating_variable_inputs": 7, "intermediates": 8,
            "large_custom_options_offset": 9, "large_custom_options_size": 10}  # fmt: skip
BUFFER = {"data": 0, "offset": 1, "size": 2}
METADATA = {"name": 0, "buffer": 1}

# Builtin option tables decoded into OpInfo.options, keyed by their BuiltinOptions union type.
# Each field: (name, slot, kind, default). Kinds: "i32", "f32", "bool", "ints" (vector of int32),
# "dtype" (TensorType), or an enum tuple (byte-sized index into it).
_ACT = ("fused_activation_function", ACTIVATION)
_STRIDES = [("padding", 0, PADDING, 0), ("stride_w", 1, "i32", 0), ("stride_h", 2, "i32", 0)]
BUILTIN_OPTIONS: dict[int, tuple[str, list[tuple[str, int, object, object]]]] = {
    1: ("Conv2DOptions", _STRIDES + [(_ACT[0], 3, _ACT[1], 0), ("dilation_w_factor", 4, "i32", 1),
                                      ("dilation_h_factor", 5, "i32", 1)]),
    2: ("DepthwiseConv2DOptions", _STRIDES + [("depth_multiplier", 3, "i32", 0),
        (_ACT[0], 4, _ACT[1], 0), ("dilation_w_factor", 5, "i32", 1),
        ("dilation_h_factor", 6, "i32", 1)]),
    5: ("Pool2DOptions", _STRIDES + [("filter_width", 3, "i32", 0),
        ("filter_height", 4, "i32", 0), (_ACT[0], 5, _ACT[1], 0)]),
    8: ("FullyConnectedOptions", [(_ACT[0], 0, _ACT[1], 0),
        ("weights_format", 1, FC_WEIGHTS_FORMAT, 0), ("keep_num_dims", 2, "bool", False)]),
    9: ("SoftmaxOptions", [("beta", 0, "f32", 0.0)]),
    10: ("ConcatenationOptions", [("axis", 0, "i32", 0), (_ACT[0], 1, _ACT[1], 0)]),
    11: ("AddOptions", [(_ACT[0], 0, _ACT[1], 0)]),
    12: ("L2NormOptions", [(_ACT[0], 0, _ACT[1], 0)]),
    15: ("ResizeBilinearOptions", [("align_corners", 2, "bool", False),
         ("half_pixel_centers", 3, "bool", False)]),
    17: ("ReshapeOptions", [("new_shape", 0, "ints", ())]),
    19: ("SpaceToDepthOptions", [("block_size", 0, "i32", 0)]),
    21: ("MulOptions", [(_ACT[0], 0, _ACT[1], 0)]),
    23: ("GatherOptions", [("axis", 0, "i32", 0), ("batch_dims", 1, "i32", 0)]),
    27: ("ReducerOptions", [("keep_dims", 0, "bool", False)]),
    28: ("SubOptions", [(_ACT[0], 0, _ACT[1], 0)]),
    29: ("DivOptions", [(_ACT[0], 0, _ACT[1], 0)]),
    30: ("SqueezeOptions", [("squeeze_dims", 0, "ints", ())]),
    32: ("StridedSliceOptions", [("begin_mask", 0, "i32", 0), ("end_mask", 1, "i32", 0),
         ("ellipsis_mask", 2, "i32", 0), ("new_axis_mask", 3, "i32", 0),
         ("shrink_axis_mask", 4, "i32", 0), ("offset", 5, "bool", False)]),
    35: ("SplitOptions", [("num_splits", 0, "i32", 0)]),
    37: ("CastOptions", [("in_data_type", 0, "dtype", 0), ("out_data_type", 1, "dtype", 0)]),
    40: ("ArgMaxOptions", [("output_type", 0, "dtype", 0)]),
    49: ("TransposeConvOptions", _STRIDES + [(_ACT[0], 3, _ACT[1], 0)]),
    59: ("PackOptions", [("values_count", 0, "i32", 0), ("axis", 1, "i32", 0)]),
    64: ("UnpackOptions", [("num", 0, "i32", 0), ("axis", 1, "i32", 0)]),
    74: ("ResizeNearestNeighborOptions", [("align_corners", 0, "bool", False),
         ("half_pixel_centers", 1, "bool", False)]),
    75: ("LeakyReluOptions", [("alpha", 0, "f32", 0.0)]),
    77: ("MirrorPadOptions", [("mode", 0, MIRROR_PAD_MODE, 0)]),
    79: ("SplitVOptions", [("num_splits", 0, "i32", 0)]),
    94: ("DepthToSpaceOptions", [("block_size", 0, "i32", 0)]),
}  # fmt: skip
