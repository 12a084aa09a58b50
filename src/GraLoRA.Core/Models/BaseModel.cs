using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>How to load a model folder.</summary>
    public sealed record BaseModelLoadOptions
    {
        /// <summary>float32, bfloat16 or float16; null keeps the checkpoint's own dtype.</summary>
        public string? DType { get; init; }
        /// <summary>cpu, cuda, cuda:N or auto.</summary>
        public string Device { get; init; } = "cpu";
    }

    /// <summary>
    /// A Hugging Face decoder checkpoint loaded for use: the network, its configuration, its generation defaults
    /// and (when the folder has one) its tokenizer. This is the object the cmdlets pass down the pipeline.
    /// </summary>
    public sealed partial class BaseModel : IDisposable
    {
        /// <summary>A display name: the repository id or the folder name.</summary>
        public string Name { get; }
        /// <summary>The local folder the model was loaded from.</summary>
        public string Path { get; }
        /// <summary>The architecture's configuration.</summary>
        public DecoderConfig Config { get; }
        /// <summary>The network (adapters are injected into it in place).</summary>
        public DecoderForCausalLM Module { get; }
        /// <summary>Generation defaults from generation_config.json.</summary>
        public GenerationOptions GenerationDefaults { get; }

        /// <summary>model_type.</summary>
        public string Architecture => Config.ModelType;
        /// <summary>The dtype the weights are held in.</summary>
        public string DType => ModelDType.Name(Module.DType);
        /// <summary>The device the weights live on.</summary>
        public string Device => Module.Device.ToString();
        /// <summary>Number of parameters (a tied head counted once).</summary>
        public long ParameterCount => Module.parameters().GroupBy(p => p.Handle).Sum(g => g.First().numel());

        BaseModel(string name, string path, DecoderForCausalLM module, GenerationOptions defaults)
        {
            Name = name;
            Path = path;
            Module = module;
            Config = module.Config;
            GenerationDefaults = defaults;
        }

        /// <summary>Loads a Hugging Face model folder (weights, config, generation config, tokenizer when present).</summary>
        public static BaseModel Load(string folder, BaseModelLoadOptions? options = null, string? name = null)
        {
            options ??= new BaseModelLoadOptions();
            TorchRuntime.EnsureInitialized();
            string full = System.IO.Path.GetFullPath(folder);
            if (!Directory.Exists(full))
                throw new GraloraException("ModelFolderNotFound", GraloraErrorKind.NotFound,
                    $"Model folder '{full}' does not exist: give a folder with config.json and *.safetensors, or a Hugging Face repository id such as Qwen/Qwen2.5-0.5B.", full);
            var device = TorchRuntime.ResolveDevice(options.Device);
            ScalarType? dtype = options.DType is null ? null : ModelDType.Parse(options.DType);
            var module = CheckpointLoader.LoadDecoder(full, dtype, device);
            try
            {
                var defaults = GenerationConfig.Load(System.IO.Path.Combine(full, "generation_config.json"), module.Config);
                var model = new BaseModel(name ?? System.IO.Path.GetFileName(full.TrimEnd(System.IO.Path.DirectorySeparatorChar)), full, module, defaults);
                model.AttachTokenizer();
                return model;
            }
            catch
            {
                module.Dispose();
                throw;
            }
        }

        partial void AttachTokenizer();

        /// <summary>
        /// One forward pass over rectangular token ids [batch][position], with an optional attention mask
        /// (1 = token, 0 = padding) and position ids of the same shape; runs with whatever adapters are active.
        /// </summary>
        public ForwardOutput Forward(IReadOnlyList<IReadOnlyList<int>> inputIds, IReadOnlyList<IReadOnlyList<int>>? attentionMask = null,
                                     IReadOnlyList<IReadOnlyList<int>>? positionIds = null, bool hiddenStates = false)
        {
            using var scope = NewDisposeScope();
            var ids = Matrix(inputIds, "InputIds", null);
            for (int i = 0; i < inputIds.Count; i++)
                foreach (var id in inputIds[i])
                    if (id < 0 || id >= Config.VocabSize)
                        throw new GraloraException("TokenOutOfRange", GraloraErrorKind.InvalidArgument,
                            $"InputIds row {i} has token id {id}, outside the model's vocabulary [0, {Config.VocabSize}).", id);
            var mask = attentionMask is null ? null : Matrix(attentionMask, "AttentionMask", ids.shape);
            var positions = positionIds is null ? null : Matrix(positionIds, "PositionIds", ids.shape);
            bool wasTraining = Module.training;
            Module.eval();
            try
            {
                using var _ = no_grad();
                return new ForwardOutput(Module.Forward(ids, mask, positions, hiddenStates));
            }
            finally
            {
                if (wasTraining) Module.train();
            }
        }

        Tensor Matrix(IReadOnlyList<IReadOnlyList<int>> rows, string what, long[]? shape)
        {
            if (rows.Count == 0 || rows[0].Count == 0)
                throw new GraloraException("EmptyInput", GraloraErrorKind.InvalidArgument, $"{what} is empty: give at least one row with at least one token.", what);
            for (int i = 1; i < rows.Count; i++)
                if (rows[i].Count != rows[0].Count)
                    throw new GraloraException("RaggedInput", GraloraErrorKind.InvalidArgument,
                        $"{what} row {i} has {rows[i].Count} entries but row 0 has {rows[0].Count}: pad rows to one length and mark padding with AttentionMask 0.", what);
            if (shape is not null && (rows.Count != shape[0] || rows[0].Count != shape[1]))
                throw new GraloraException("InputShapeMismatch", GraloraErrorKind.InvalidArgument,
                    $"{what} is {rows.Count} × {rows[0].Count} but InputIds is {shape[0]} × {shape[1]}.", what);
            var flat = rows.SelectMany(r => r.Select(v => (long)v)).ToArray();
            return tensor(flat, new long[] { rows.Count, rows[0].Count }, device: Module.Device);
        }

        /// <inheritdoc />
        public override string ToString() => $"{Name} ({Architecture}, {DType}, {Device})";

        /// <inheritdoc />
        public void Dispose()
        {
            DisposeTokenizer();
            Module.Dispose();
        }

        partial void DisposeTokenizer();
    }
}
