namespace Naani.Models;

/// What Fit does when a step's loss or gradient is NaN or infinite (Model.OnNonFinite, or a callback's answer).
public enum NonFiniteAction
{
    /// End Fit with a NonFiniteTrainingException; the weights stay as they were before the step.
    Stop,

    /// Leave the batch out (no update) and go on; counted in TrainingRun.SkippedBatches.
    SkipBatch,

    /// End training quietly after the epoch's finished batches, as Keras's TerminateOnNaN does; no exception.
    EndTraining,
}

/// A step whose loss or gradient was not finite: where (the 0-based epoch, -1 outside Fit, and the 1-based step within it), what
/// (Reason), and the first layer in backward order whose gradient went non-finite (null when the loss itself did).
/// WeightsIntact is false when the optimizer's update itself overflowed: the weights are then spoiled, and only a
/// checkpoint from before the step (Fit saves none after it) holds good ones.
public sealed record NonFiniteStep(int Epoch, int Step, string Reason, string? Layer, string? Weight, double Loss, bool WeightsIntact = true);

/// Training stopped because a loss or gradient became NaN or infinite. The weights are those before the bad step.
public sealed class NonFiniteTrainingException(NonFiniteStep detail, History? history) : InvalidOperationException(Describe(detail))
{
    public NonFiniteStep Detail { get; } = detail;

    /// The finished epochs' logs (null when thrown by TrainStep outside Fit).
    public History? History { get; } = history;

    static string Describe(NonFiniteStep d) =>
        (d.Epoch >= 0 ? $"Training stopped at epoch {d.Epoch + 1}, step {d.Step}: " : $"Training stopped at step {d.Step}: ") +
        $"{d.Reason}. " +
        (d.WeightsIntact ? "The weights are those before this step. " : "The weights are no longer finite; the last checkpoint before this step holds good ones. ") +
        "Lower the learning rate, clip the inputs, or check the data for NaN/Inf values.";
}
