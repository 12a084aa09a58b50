// Writes the quickstart datasets beside this script, deterministically (no randomness: every choice is arithmetic on the
// record number), so running it again reproduces the committed files byte for byte:
//
//   dotnet fsi examples/data/generate.fsx
//
// tiny-chat.jsonl   200 conversations in "messages" format: sums, differences, products of one-digit numbers and
//                   colours of everyday things; every fourth is two turns long, every fifth starts with a system message.
// tiny-alpaca.jsonl 100 alpaca records (instruction, input, output) on the same facts.
//
// The answers follow one pattern ("3 + 4 = 7.", "A banana is yellow."), which a tiny model learns in a few hundred steps.

open System
open System.IO
open System.Text
open System.Text.Encodings.Web
open System.Text.Json

let colours =
    [| "the sky", "blue"; "grass", "green"; "snow", "white"; "coal", "black"; "a banana", "yellow"; "a tomato", "red"
       "an orange", "orange"; "a lemon", "yellow"; "a carrot", "orange"; "milk", "white"; "a strawberry", "red"
       "a frog", "green"; "the sea", "blue"; "chocolate", "brown"; "an aubergine", "purple"; "a flamingo", "pink" |]

let capitalise (s: string) = string (Char.ToUpperInvariant s.[0]) + s.Substring 1

let options = JsonSerializerOptions(Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping)
let json (value: obj) = JsonSerializer.Serialize(value, options)
let message role (content: string) = dict [ "role", box role; "content", box content ]

/// The digits of (37k + 11) mod 100: k = 0..99 gives all 100 pairs of one-digit numbers, in a scrambled order.
let pair k = let n = (k * 37 + 11) % 100 in n / 10, n % 10

/// Question and answer number k of a kind: 0 sum, 1 difference (never negative), 2 product, 3 colour.
let fact kind k =
    let a, b = pair k
    match kind with
    | 0 -> $"What is {a} + {b}?", $"{a} + {b} = {a + b}."
    | 1 -> let hi, lo = max a b, min a b in $"What is {hi} - {lo}?", $"{hi} - {lo} = {hi - lo}."
    | 2 -> $"What is {a} * {b}?", $"{a} * {b} = {a * b}."
    | _ -> let thing, colour = colours.[k % colours.Length] in $"What colour is {thing}?", $"{capitalise thing} is {colour}."

let write name (lines: string seq) =
    let path = Path.Combine(__SOURCE_DIRECTORY__, name)
    File.WriteAllText(path, String.Join("\n", lines) + "\n", UTF8Encoding false)
    printfn "%s: %d bytes" path (FileInfo path).Length

write "tiny-chat.jsonl" (seq {
    for i in 0 .. 199 ->
        let q1, a1 = fact (i % 4) (i / 4)
        let turns = ResizeArray<obj>()
        if i % 5 = 0 then turns.Add(message "system" "You are a concise assistant. Answer in one short sentence.")
        turns.Add(message "user" q1)
        turns.Add(message "assistant" a1)
        if i % 4 = 3 then
            let q2, a2 = fact ((i / 4) % 3) (i / 4 + 50)
            turns.Add(message "user" q2)
            turns.Add(message "assistant" a2)
        json (dict [ ("messages", box turns) ]) })

write "tiny-alpaca.jsonl" (seq {
    for i in 0 .. 99 ->
        let a, b = pair (i / 4 + 25)
        let record (instruction: string) (input: string) (output: string) =
            json (dict [ "instruction", box instruction; "input", box input; "output", box output ])
        match i % 4 with
        | 0 -> record "Add the two numbers." $"{a} and {b}" $"{a} + {b} = {a + b}."
        | 1 -> record "Multiply the two numbers." $"{a} and {b}" $"{a} * {b} = {a * b}."
        | 2 -> let thing, colour = colours.[(i / 4) % colours.Length] in record "Name the colour of the thing." thing $"{capitalise thing} is {colour}."
        | _ -> let q, answer = fact ((i / 4) % 3) (i / 4 + 75) in record q "" answer })
