#Requires -Version 7.4
<#
.SYNOPSIS
    Quickstart on the embedded default: fine-tune a GraLoRA adapter on a tiny model end to end, on CPU, in about a
    minute: device report, model, adapter, training, evaluation, merge, chat, export.
.DESCRIPTION
    Run from a checkout with './build.sh quickstart' (builds first). Steps:
      1. Get-TorchDevice: the devices and libtorch build, in one line.
      2. New-BaseModel | Import-BaseModel: a random Llama-architecture model (hidden 128, 4 layers, 657,792 parameters)
         with a real byte-level tokenizer and chat template, saved and loaded like a downloaded checkpoint.
      3. Add-GraLoRAAdapter: GraLoRA r 32, k 2 on every linear layer, and the output head trained in full (the base
         model is random, so its head has to learn the answers' tokens); prints trainable/all parameters.
      4. Start-GraLoRATraining: 400 steps (batch 8, learning rate 3e-3, linear decay) on the first 180 conversations of
         examples/data/tiny-chat.jsonl; the last 20 are held out. One line every 50 steps shows the loss falling.
      5. Invoke-GraLoRAEvaluation: loss, perplexity and greedy exact match on the held-out conversations, and exact
         match on 20 training conversations.
      6. Merge-GraLoRAAdapter, then a greedy chat with the merged model (streamed).
      7. Export-BaseModel to a temporary folder (a Hugging Face checkpoint folder), then everything is deleted.

    Measured on the 2-core development machine (CPU, libtorch 2.10): 'time ./build.sh quickstart' right after a build
    takes real 0m44s (up-to-date build step ~5 s, training ~35 s); 1m11s when the build step has to recompile.
    Expected output (losses are deterministic on a given machine; timings and tok/s vary):

      Devices cpu · backend cpu · libtorch 2.10.0.0 · TorchSharp 0.107.0 · 2 threads
      model: quickstart (llama, float32, cpu), 657,792 parameters
      trainable params: 295,552 || all params: 953,344 || trainable%: 31.0016
      Training adapter 'default' on 180 examples (Chat, 23 batches of 8 per epoch): 400 steps
      step    50/400  loss 1.0542  lr 2.70e-03  grad_norm 0.924  1,191 tok/s
      step   100/400  loss 0.7070  ...
      ...                                              (one line per 50 steps, the loss falling)
      step   400/400  loss 0.0807  lr 7.69e-06  grad_norm 0.241  1,383 tok/s
      done: 400/400 steps in 00:00:36, final loss 0.0807
      held-out: loss 0.2306, perplexity 1.259, exact match 10% (2/20)
      training (first 20): loss 0.1067, perplexity 1.113, exact match 50% (10/20)
      (a table of six held-out answers: Expected, Generated, Correct)
      user: What colour is a banana?
      assistant: A banana is yellow.
      exported: /tmp/gralora-quickstart-…/merged (config.json, generation_config.json, model.safetensors, tokenizer_config.json, tokenizer.json)
      quickstart finished in 40 s

    The held-out questions are sums, differences and products of pairs the model never saw; 180 examples teach the
    answer pattern and the colours, not arithmetic, so held-out exact match stays low (10%) while the held-out loss is
    low (the pattern is right, the digits are not) and half of the training conversations come back exactly. Swap
    New-BaseModel for a real folder or 'Import-BaseModel -Name Qwen/Qwen2.5-0.5B' (and drop -ModulesToSave) on a
    machine that can reach the Hugging Face Hub.
.PARAMETER Steps
    Training steps (default 400, as above; the tests run 20).
#>
param([ValidateRange(1, 100000)] [int] $Steps = 400)
$ErrorActionPreference = 'Stop'
# The module keeps its status lines (trainable parameters, per-step lines, streamed text) off stdout in a
# -NonInteractive session, which is how ./build.sh runs this script; a demo wants to show them.
$InformationPreference = 'Continue'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force
$clock = [Diagnostics.Stopwatch]::StartNew()

$info = Get-TorchDevice
if (-not $info.SelfTestPassed) { throw 'libtorch loaded but a tensor operation gave a wrong result.' }
"Devices $(($info.Devices | ForEach-Object Name) -join ', ') · backend $($info.TorchBackend) · libtorch $($info.LibTorchVersion) · TorchSharp $($info.TorchSharpVersion) · $($info.Threads) threads"

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-quickstart-" + [guid]::NewGuid().ToString('N'))
$model = $null
try {
    # The data: 200 short conversations (sums, differences, products, colours); the last 20 are held out.
    New-Item -ItemType Directory $work | Out-Null
    $lines = Get-Content (Join-Path $PSScriptRoot 'data/tiny-chat.jsonl')
    $train = Join-Path $work 'train.jsonl'
    $heldOut = Join-Path $work 'held-out.jsonl'
    $lines[0..179] | Set-Content $train
    $lines[180..199] | Set-Content $heldOut

    $model = New-BaseModel (Join-Path $work 'quickstart') -Architecture llama -HiddenSize 128 -IntermediateSize 256 -Layers 4 -Seed 0 |
        Import-BaseModel
    "model: $model, $('{0:N0}' -f $model.ParameterCount) parameters"

    # Import → adapter → training, as one pipeline; the result carries the model on.
    $run = $model |
        Add-GraLoRAAdapter -Rank 32 -K 2 -TargetModule all-linear -ModulesToSave lm_head |
        Start-GraLoRATraining -Dataset $train -MaxSteps $Steps -BatchSize 8 -LearningRate 3e-3 -WarmupSteps 10 -LoggingSteps ([Math]::Max(1, [Math]::Min(50, [int]($Steps / 4)))) -Seed 42
    $first = $run.History[0].Loss
    if (-not ($run.FinalLoss -lt $first)) { throw "The loss did not fall ($first → $($run.FinalLoss))." }

    $held = $run | Invoke-GraLoRAEvaluation -Dataset $heldOut -ExactMatch
    '{0}: loss {1:0.0000}, perplexity {2:0.###}, exact match {3:0%} ({4}/{5})' -f 'held-out', $held.Loss, $held.Perplexity, $held.ExactMatch, $held.Correct, $held.Total
    $seen = $run | Invoke-GraLoRAEvaluation -Dataset $train -ExactMatch -Limit 20
    '{0}: loss {1:0.0000}, perplexity {2:0.###}, exact match {3:0%} ({4}/{5})' -f 'training (first 20)', $seen.Loss, $seen.Perplexity, $seen.ExactMatch, $seen.Correct, $seen.Total
    $held.Samples | Select-Object -First 6 Expected, Generated, Correct | Format-Table | Out-String -Stream | Where-Object { $_ }

    # Merge the adapter into the weights, chat with the result, export it as a Hugging Face folder.
    $merged = $run | Merge-GraLoRAAdapter
    $question = 'What colour is a banana?'
    Write-Host "user: $question"
    Write-Host -NoNewline 'assistant: '
    $reply = $merged | Invoke-GraLoRAGeneration -Messages @{ role = 'user'; content = $question } -MaxNewTokens 24 -Greedy -Stream
    $folder = $merged | Export-BaseModel (Join-Path $work 'merged')
    "exported: $($folder.FullName) ($((Get-ChildItem $folder -File).Name -join ', '))"
    'quickstart finished in {0:0} s' -f $clock.Elapsed.TotalSeconds
}
finally {
    if ($model) { $model.Dispose() }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
