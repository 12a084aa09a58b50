using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>
    /// What the trainer, the adapters and <see cref="BaseModel"/> need of a network, decoder or encoder alike: where its
    /// weights live and, when it has one, its sequence-classification head.
    /// </summary>
    public interface ITransformerNetwork
    {
        /// <summary>The Hugging Face model_type (llama, qwen2, bert, roberta …).</summary>
        string ModelType { get; }
        /// <summary>Rows of the token embedding table.</summary>
        int VocabSize { get; }
        /// <summary>The device the parameters live on.</summary>
        Device Device { get; }
        /// <summary>The dtype of the parameters.</summary>
        ScalarType DType { get; }
        /// <summary>Recompute activations in backward (decoders only; encoders refuse it).</summary>
        bool GradientCheckpointing { get; set; }
        /// <summary>
        /// Whether the model reads token type ids (BERT: type_vocab_size 2). RoBERTa (one type) and decoders do not, as
        /// their transformers tokenizers return none: sentence-pair type ids are then not passed.
        /// </summary>
        bool UsesTokenTypes { get; }
        /// <summary>Labels of the classification head, or 0 when there is none.</summary>
        int ClassificationLabels { get; }
        /// <summary>The module name of the classification head (score for decoders, classifier for encoders).</summary>
        string ClassificationHead { get; }
        /// <summary>Class logits [B, labels] for token ids [B, L] with an optional mask and token type ids (encoders).</summary>
        Tensor ClassificationLogits(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null);
    }
}
