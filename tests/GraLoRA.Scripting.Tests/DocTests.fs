module GraLoRA.Scripting.Tests.DocTests

open System
open System.IO
open System.Reflection
open System.Xml.Linq
open Microsoft.FSharp.Reflection
open Xunit

/// XML doc member name → summary text, from the documentation file the build writes beside the assembly.
let private docs (assembly: Assembly) =
    let file = match Path.ChangeExtension(assembly.Location, ".xml") with null -> failwith "assembly has no location" | f -> f
    XDocument.Load(file).Descendants(XName.Get "member")
    |> Seq.map (fun m ->
        let name = match m.Attribute(XName.Get "name") with null -> "" | a -> a.Value
        name, m.Value.Trim())
    |> Map.ofSeq

/// Every public item of the library's API that must carry a doc comment: types, module functions and values,
/// record fields, union cases and builder methods; as (doc member name prefix, what it is).
let private requiredDocs (assembly: Assembly) =
    let flags = BindingFlags.Public ||| BindingFlags.Static ||| BindingFlags.Instance ||| BindingFlags.DeclaredOnly
    // Unions compile to nested case classes and a Tags class: their cases are checked from the union itself.
    let generated (t: Type) = match t.DeclaringType with null -> false | parent -> FSharpType.IsUnion(parent, true)
    [ for t in assembly.GetExportedTypes() |> Array.filter (generated >> not) do
        let name = (match t.FullName with null -> t.Name | n -> n).Replace('+', '.')
        yield $"T:{name}", $"type {name}"
        if FSharpType.IsModule t then
            for m in t.GetMethods flags do
                if not m.IsSpecialName then yield $"M:{name}.{m.Name}", $"function {name}.{m.Name}"
            for p in t.GetProperties flags do
                yield $"P:{name}.{p.Name}", $"value {name}.{p.Name}"
        elif FSharpType.IsRecord(t, true) then
            for field in FSharpType.GetRecordFields(t, true) do
                yield $"P:{name}.{field.Name}", $"field {name}.{field.Name}"
        elif FSharpType.IsUnion(t, true) then
            for case in FSharpType.GetUnionCases(t, true) do
                yield $"T:{name}.{case.Name}", $"case {name}.{case.Name}"
        elif t.IsClass then
            for m in t.GetMethods flags do
                if not m.IsSpecialName && m.DeclaringType = t then yield $"M:{name}.{m.Name}", $"method {name}.{m.Name}" ]

let private placeholders = [ "TBD"; "TODO"; "FIXME"; "Placeholder"; "Summary here" ]

[<Fact>]
let ``every public type, function, value, field, case and builder method of GraLoRA.Scripting has a real doc comment`` () =
    let assembly = typeof<GraLoRA.Scripting.AdapterSettings>.Assembly
    let documented = docs assembly
    let required = requiredDocs assembly
    Assert.True(required.Length > 100, $"only {required.Length} items found: the reflection walk is broken")
    let summaryOf (prefix: string) =
        documented
        |> Map.tryPick (fun key text -> if key = prefix || key.StartsWith(prefix + "(", StringComparison.Ordinal) then Some text else None)
    let problems =
        [ for prefix, what in required do
            match summaryOf prefix with
            | None -> yield $"{what}: no doc comment"
            | Some text when text.Length < 12 -> yield $"{what}: doc comment too short ('{text}')"
            | Some text when placeholders |> List.exists (fun p -> text.Contains(p, StringComparison.Ordinal)) -> yield $"{what}: placeholder text ('{text}')"
            | Some _ -> () ]
    Assert.True(List.isEmpty problems, String.Join(Environment.NewLine, problems))
