"""The corpus: every operator, every bug with the checks that must flag it, and every
correct variant, as lists of ``Entry``.

The check names are THE CONTRACT's (notes/spec11.md). The first named check is the one
whose job the mistake is; every named check must flag it. Tie bugs (the full gradient to
every tied maximum) pass each element's bracket of one-sided derivatives; only a joint
condition sees them, which is what signed random probes judged by their own brackets
give, hence ``vjp_probes``. A bug with a wrong forward whose backward matches that forward
is named ``forward_matches_reference``: finite differences of its own forward cannot see it.
"""

from __future__ import annotations

from tests.operator_corpus import activations as act
from tests.operator_corpus import attention as att
from tests.operator_corpus import convolution as conv
from tests.operator_corpus import dense
from tests.operator_corpus import losses as loss
from tests.operator_corpus import normalization as norm
from tests.operator_corpus import pooling as pool
from tests.operator_corpus import shape_ops as shp
from tests.operator_corpus import softmax as sm
from tests.operator_corpus.operator import Entry

# THE CONTRACT's check names for mappings.
CHECKS = ("outputs_are_finite", "gradient_shapes", "gradient_dtypes", "inputs_not_mutated", "deterministic",
          "no_state_between_calls", "no_gradient_for_integer_inputs", "forward_matches_reference",
          "vjp_matches_oracle", "vjp_probes", "jvp_matches_oracle", "jvp_vjp_transpose", "second_order")

VJP = ("vjp_matches_oracle",)
TIES = ("vjp_probes",)
FORWARD = ("forward_matches_reference",)
SHAPES = ("gradient_shapes",)
DTYPES = ("gradient_dtypes",)
MUTATION = ("inputs_not_mutated",)
STATE = ("no_state_between_calls", "deterministic")
FINITE = ("outputs_are_finite",)
JVP = ("jvp_matches_oracle", "jvp_vjp_transpose")

OPERATORS = (
    dense.Linear, dense.Matmul, dense.Embedding,
    conv.Conv1d, conv.Conv2d, pool.MaxPool2d, pool.AvgPool2d,
    sm.Softmax, sm.LogSoftmax, sm.LogSumExp, norm.LayerNorm, norm.BatchNorm,
    loss.Mse, loss.CrossEntropy, att.Attention,
    act.Relu, act.LeakyRelu, act.Abs, act.Gelu, act.Silu, act.Sigmoid, act.Tanh,
    shp.Sum, shp.Mean, shp.Amax, shp.Permute, shp.Concatenate,
)

BUGS = (
    # linear / matmul / embedding
    Entry(dense.LinearBiasNotSummed, SHAPES),
    Entry(dense.LinearBiasSummedOverFirstAxisOnly, SHAPES),
    Entry(dense.LinearWeightGradTransposed, VJP + SHAPES),
    Entry(dense.LinearInputGradWrongTranspose, VJP),
    Entry(dense.LinearGradientsAccumulate, STATE),
    Entry(dense.LinearFloat32Gradients, DTYPES),
    Entry(dense.MatmulWeightNotSummedOverBatch, SHAPES),
    Entry(dense.EmbeddingBufferedAdd, VJP),
    Entry(dense.EmbeddingAssigned, VJP),
    Entry(dense.EmbeddingIndicesNotSaved, VJP),
    # convolution
    Entry(conv.Conv1dBufferedCol2im, VJP),
    Entry(conv.Conv1dWeightGradIgnoresDilation, VJP),
    Entry(conv.Conv2dKernelNotRotated, VJP),
    Entry(conv.Conv2dRot90ChannelAxes, VJP),
    Entry(conv.Conv2dStrideNotSpread, VJP),
    Entry(conv.Conv2dInputGradIgnoresDilation, VJP),
    Entry(conv.Conv2dCropFromCorner, VJP),
    Entry(conv.Conv2dWeightGradReversed, VJP),
    Entry(conv.Conv2dJvpWeightTangentDropped, JVP),
    # pooling
    Entry(pool.MaxPool2dEveryTieGetsGradient, TIES),
    Entry(pool.MaxPool2dLooseMask, VJP),
    Entry(pool.MaxPool2dAssignedNotAccumulated, VJP),
    Entry(pool.MaxPool2dCropFromCorner, VJP),
    Entry(pool.AvgPool2dDivisorCountsPadding, VJP),
    Entry(pool.AvgPool2dAssignedNotAccumulated, VJP),
    # softmax family
    Entry(sm.SoftmaxDiagonalOnly, VJP),
    Entry(sm.SoftmaxCotangentTwice, VJP),
    Entry(sm.SoftmaxFixedAxis0, FORWARD),
    Entry(sm.SoftmaxNoMaxSubtraction, FINITE),
    Entry(sm.SoftmaxOverwritesCotangent, MUTATION),
    Entry(sm.SoftmaxJvpDiagonalOnly, JVP),
    Entry(sm.LogSoftmaxMissingSum, VJP),
    Entry(sm.LogSumExpMaxHalfDifferentiated, VJP),
    Entry(sm.LogSumExpNaive, FINITE),
    Entry(sm.LogSumExpFloat32Gradient, DTYPES),
    # normalisation
    Entry(norm.LayerNormStatisticsConstant, VJP),
    Entry(norm.LayerNormGammaBetaSwapped, VJP),
    Entry(norm.LayerNormUnbiasedVariance, FORWARD),
    Entry(norm.LayerNormAssumes2D, SHAPES),
    Entry(norm.LayerNormFloat32Statistics, FORWARD + VJP),
    Entry(norm.LayerNormJvpStatisticsConstant, JVP),
    Entry(norm.BatchNormStatisticsConstant, VJP),
    Entry(norm.BatchNormInputGradWithoutGamma, VJP),
    Entry(norm.BatchNormBackwardUnbiasedVariance, VJP),
    Entry(norm.BatchNormRunningStatistics, STATE),
    Entry(norm.BatchNormCentresInPlace, MUTATION),
    # losses
    Entry(loss.MseNotDividedByN, VJP),
    Entry(loss.MseTargetGradientSign, VJP),
    Entry(loss.MseGradientNotMultiplied, VJP),
    Entry(loss.CrossEntropySubtractsLabels, VJP),
    Entry(loss.CrossEntropyDividesByBatch, VJP),
    Entry(loss.CrossEntropyIgnoredRowsGetGradient, VJP),
    Entry(loss.CrossEntropySmoothingIncludesIgnored, FORWARD),
    Entry(loss.CrossEntropyGradientForLabels, ("no_gradient_for_integer_inputs",)),
    # attention
    Entry(att.AttentionMaskAfterSoftmax, FORWARD),
    Entry(att.AttentionScaleMissingInBackward, VJP),
    Entry(att.AttentionBackwardUnmasked, VJP),
    Entry(att.AttentionScalePromotesFloat32, DTYPES, dtype="float32"),
    # activations
    Entry(act.ReluInPlace, MUTATION),
    Entry(act.ReluGradientNotMultiplied, VJP),
    Entry(act.LeakyReluIgnoresSlope, VJP),
    Entry(act.LeakyReluInPlace, MUTATION),
    Entry(act.GeluTanhDerivative, VJP),
    Entry(act.GeluTanhDerivative, VJP, dtype="float32"),
    Entry(act.SiluMissingParenthesis, VJP),
    Entry(act.SigmoidDerivativeOfInput, VJP),
    Entry(act.SigmoidOfOneMinusSigmoid, VJP),
    Entry(act.TanhDerivativeOfInput, VJP),
    # reductions and shape operators
    Entry(shp.SumBroadcastWithoutExpand, VJP),
    Entry(shp.MeanDividesByOutputSize, VJP),
    Entry(shp.AmaxEveryTieGetsGradient, TIES),
    Entry(shp.PermuteBackwardSamePermutation, SHAPES + VJP),
    Entry(shp.ConcatenateSplitAtSizes, SHAPES),
    Entry(shp.ConcatenateSplitAlongAxis0, SHAPES),
)

VARIANTS = (
    # float32: judged against float32 rounding, never flagged
    Entry(dense.Linear, dtype="float32"),
    Entry(conv.Conv1d, dtype="float32"),
    Entry(conv.Conv2d, dtype="float32"),
    Entry(pool.MaxPool2d, dtype="float32"),
    Entry(sm.Softmax, dtype="float32"),
    Entry(sm.LogSumExp, dtype="float32"),
    Entry(norm.LayerNorm, dtype="float32"),
    Entry(norm.BatchNorm, dtype="float32"),
    Entry(loss.CrossEntropy, dtype="float32"),
    Entry(att.Attention, dtype="float32"),
    Entry(act.Gelu, dtype="float32"),
    Entry(act.Tanh, dtype="float32"),
    # every valid convention at kinks and ties
    Entry(act.ReluOneAtZero),
    Entry(act.ReluHalfAtZero),
    Entry(act.LeakyReluOneAtZero),
    Entry(act.AbsOneAtZero),
    Entry(pool.MaxPool2dSplitTies),
    Entry(pool.MaxPool2dLastTie),
    Entry(shp.AmaxFirstTie),
    Entry(shp.AmaxLastTie),
    Entry(pool.MaxPool2dLastTie, dtype="float32"),
    # other valid formulations
    Entry(act.GeluTanh),
    Entry(act.GeluTanh, dtype="float32"),
    Entry(loss.HalfMse),
    Entry(norm.BatchNormCompact),
    Entry(att.AttentionMaskMultiplyRenormalise),
    # large magnitudes
    Entry(sm.SoftmaxLargeLogits),
    Entry(norm.LayerNormLargeOffset),
    Entry(norm.LayerNormLargeOffset, dtype="float32"),
    Entry(act.SigmoidSaturated),
    Entry(act.TanhSaturated),
    Entry(act.SigmoidSaturated, dtype="float32"),
)

CORRECT = tuple(Entry(op) for op in OPERATORS) + VARIANTS

# Cases no tolerance can judge in their dtype, so issue 13 has the engine call them INCONCLUSIVE
# ("cannot be judged"), never PASS: the largest derivative of the tensor is one a correct
# implementation returns as 0 (it is below the rounding of the quantities its backward subtracts,
# eps |cotangent|), so a tolerance that passes the correct answer passes an all-zero gradient too.
# test_corpus checks that these cases, and no others, are INCONCLUSIVE for a correct entry.
UNJUDGEABLE = {
    ("SigmoidSaturated[float32]", "|x| from 17 to 40"):
        "sigmoid'(17) = 4e-8 is below float32's eps (1.2e-7): s * (1 - s) rounds to 0 at x = 17",
    ("SoftmaxLargeLogits", "logits ~ 1e4"):
        "gaps of hundreds between logits: every derivative is below 1e-195, far below eps |cotangent|",
}
