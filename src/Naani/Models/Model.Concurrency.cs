namespace Naani.Models;

/// One model, many threads. A model's graph keeps its activations in workspaces of its own, reused by
/// every call, so two calls running it at once would overwrite each other's values. Every call that runs
/// the graph or changes the weights therefore holds the model's graph lock: Predict, PredictOutputs and
/// Evaluate (the whole call on tensors; each batch on an IBatchSource, while the next one loads), each
/// TrainStep (so Fit holds it one step at a time), SetWeights, Save and building a Sequential. Calls from
/// several threads are safe and give the results one thread would; they run one after another, each
/// itself spread over Threading.MaxThreads threads. A prediction made while another thread trains waits
/// for the current step and sees the weights between two steps.
/// To predict in parallel rather than in turn, give each thread its own copy of the model (Model.Load of
/// the same file, or the same architecture and SetWeights(GetWeights())): models share nothing but the
/// kernels' worker pool, which serves one kernel call at a time.
public abstract partial class Model
{
    readonly Lock graphLock = new();

    /// Holds the graph lock until disposed (`using var exclusive = ExclusiveUse();`). Reentrant, so a call
    /// holding it may make another that takes it. Taking it allocates nothing (a training step stays allocation-free).
    internal Lock.Scope ExclusiveUse() => graphLock.EnterScope();

    /// Keeps the workspaces of at least this many batch sizes (a Predictor's buckets), so that switching between
    /// them allocates nothing.
    internal virtual void KeepWorkspaces(int batchSizes) { }
}
