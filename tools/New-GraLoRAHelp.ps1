#Requires -Version 7.4
<#
.SYNOPSIS
    Writes the module's MAML help (GraLoRA.PowerShell.dll-Help.xml) from the cmdlets' XML doc comments.
.DESCRIPTION
    Run by GraLoRA.PowerShell.csproj after the module is laid out. Imports the module to read each cmdlet's parameter
    sets (types, mandatory, position, pipeline input) and takes the text from the compiler's XML documentation:
    <para type="synopsis"> and <para type="description"> on cmdlet classes and parameters, and
    <example><code>...</code><para>...</para></example> on cmdlet classes.
.PARAMETER Manifest
    The module manifest to import (GraLoRA.psd1).
.PARAMETER DocFile
    The compiler's documentation file (GraLoRA.PowerShell.xml).
.PARAMETER OutFile
    The MAML file to write (module/bin/en-US/GraLoRA.PowerShell.dll-Help.xml).
#>
param(
    [Parameter(Mandatory)] [string] $Manifest,
    [Parameter(Mandatory)] [string] $DocFile,
    [Parameter(Mandatory)] [string] $OutFile
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$module = Import-Module (Resolve-Path $Manifest).Path -PassThru -Force
[xml] $doc = Get-Content $DocFile -Raw
$members = @{}
foreach ($member in $doc.doc.members.member) { $members[$member.name] = $member }

$common = [Management.Automation.PSCmdlet]::CommonParameters + [Management.Automation.PSCmdlet]::OptionalCommonParameters
$fallback = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs; nothing is changed.'
    Confirm = 'Asks for confirmation before the cmdlet changes anything.'
}

function Get-Para($Node, [string] $Type) {
    if ($null -eq $Node) { return $null }
    $summary = $Node.SelectSingleNode('summary')
    if ($null -eq $summary) { return $null }
    $paras = $summary.SelectNodes("para[@type='$Type']")
    $text = foreach ($p in $paras) { ($p.InnerText -replace '\s+', ' ').Trim() }
    if ($text) { @($text) } else { $null }
}

# Removes the indentation the compiler adds to every line of a multi-line <code>.
function Format-Code([string] $Text) {
    $lines = $Text.Trim("`r", "`n") -split '\r?\n'
    $indents = foreach ($l in $lines | Select-Object -Skip 1) { if ($l.Trim()) { $l.Length - $l.TrimStart().Length } }
    $cut = if ($indents) { ($indents | Measure-Object -Minimum).Minimum } else { 0 }
    $out = for ($i = 0; $i -lt $lines.Count; $i++) {
        if ($i -eq 0) { $lines[0].Trim() } elseif ($lines[$i].Length -ge $cut) { $lines[$i].Substring($cut).TrimEnd() } else { $lines[$i].Trim() }
    }
    $out -join "`n"
}

$settings = [Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [Text.UTF8Encoding]::new($false) }
$dir = Split-Path -Parent $OutFile
New-Item -ItemType Directory -Force $dir | Out-Null
$tmp = "$OutFile.tmp"
$w = [Xml.XmlWriter]::Create($tmp, $settings)
$maml = 'http://schemas.microsoft.com/maml/2004/10'
$cmd = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$dev = 'http://schemas.microsoft.com/maml/dev/2004/10'
function Para([string] $Text) { $w.WriteStartElement('maml', 'para', $maml); $w.WriteString($Text); $w.WriteEndElement() }
function Description([string[]] $Text) {
    $w.WriteStartElement('maml', 'description', $maml)
    foreach ($t in $Text) { Para $t }
    $w.WriteEndElement()
}
function Write-Parameter($Param, $Set, [string] $Description, $Default) {
    $pipeline = @(if ($Set.ValueFromPipeline) { 'ByValue' }; if ($Set.ValueFromPipelineByPropertyName) { 'ByPropertyName' })
    $w.WriteStartElement('command', 'parameter', $cmd)
    $w.WriteAttributeString('required', ([string]$Set.IsMandatory).ToLowerInvariant())
    $w.WriteAttributeString('variableLength', 'true')
    $w.WriteAttributeString('globbing', 'false')
    $w.WriteAttributeString('pipelineInput', $(if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }))
    $w.WriteAttributeString('position', $(if ($Set.Position -ge 0) { [string]$Set.Position } else { 'named' }))
    $w.WriteAttributeString('aliases', $(if ($Param.Aliases.Count) { $Param.Aliases -join ', ' } else { 'none' }))
    $w.WriteElementString('name', $maml, $Param.Name)
    Description $Description
    $isSwitch = $Param.ParameterType -eq [switch]
    if (-not $isSwitch) {
        $w.WriteStartElement('command', 'parameterValue', $cmd)
        $w.WriteAttributeString('required', 'true'); $w.WriteAttributeString('variableLength', 'false')
        $w.WriteString($Param.ParameterType.Name)
        $w.WriteEndElement()
    }
    $validate = $Param.Attributes | Where-Object { $_ -is [Management.Automation.ValidateSetAttribute] }
    if ($validate) {
        $w.WriteStartElement('command', 'parameterValueGroup', $cmd)
        foreach ($v in $validate.ValidValues) {
            $w.WriteStartElement('command', 'parameterValue', $cmd)
            $w.WriteAttributeString('required', 'false'); $w.WriteAttributeString('variableLength', 'false')
            $w.WriteString($v); $w.WriteEndElement()
        }
        $w.WriteEndElement()
    }
    $w.WriteStartElement('dev', 'type', $dev); $w.WriteElementString('name', $maml, $Param.ParameterType.FullName); $w.WriteEndElement()
    $w.WriteElementString('defaultValue', $dev, $(if ($isSwitch) { 'False' } elseif ($null -ne $Default -and "$Default" -ne '' -and "$Default" -ne '0') { [string]::Format([Globalization.CultureInfo]::InvariantCulture, '{0}', $Default) } else { 'None' }))
    $w.WriteEndElement()
}

$w.WriteStartDocument()
$w.WriteStartElement('helpItems', 'http://msh')
$w.WriteAttributeString('schema', 'maml')
foreach ($command in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $type = $command.ImplementingType
    $node = $members["T:$($type.FullName)"]
    $synopsis = Get-Para $node 'synopsis'
    if (-not $synopsis) { throw "$($command.Name) ($($type.FullName)) has no <para type=`"synopsis`"> in its XML docs." }
    $description = Get-Para $node 'description'
    if (-not $description) { $description = $synopsis }
    $examples = if ($node) { @($node.SelectNodes('example')) } else { @() }
    if ($examples.Count -eq 0) { throw "$($command.Name) has no <example> in its XML docs." }
    $instance = [Activator]::CreateInstance($type)

    $w.WriteStartElement('command', 'command', $cmd)
    $w.WriteAttributeString('xmlns', 'maml', $null, $maml)
    $w.WriteAttributeString('xmlns', 'command', $null, $cmd)
    $w.WriteAttributeString('xmlns', 'dev', $null, $dev)
    $w.WriteStartElement('command', 'details', $cmd)
    $w.WriteElementString('name', $cmd, $command.Name)
    $w.WriteElementString('verb', $cmd, $command.Verb)
    $w.WriteElementString('noun', $cmd, $command.Noun)
    Description $synopsis
    $w.WriteEndElement()
    Description $description

    $own = $command.Parameters.Values | Where-Object { $_.Name -notin $common }
    $paramText = @{}
    foreach ($p in $own) {
        # Inherited parameters (e.g. TrainingSettingsCmdlet's) are documented on the class that declares them.
        $declaring = $type.GetProperty($p.Name).DeclaringType
        $text = Get-Para $members["P:$($declaring.FullName).$($p.Name)"] 'description'
        if (-not $text) { $text = $fallback[$p.Name] }
        if (-not $text) { throw "$($command.Name) -$($p.Name) has no <para type=`"description`"> in its XML docs." }
        $paramText[$p.Name] = $text -join ' '
    }
    $defaults = @{}
    foreach ($p in $own) {
        $prop = $type.GetProperty($p.Name)
        if ($prop) { $defaults[$p.Name] = $prop.GetValue($instance) }
    }

    $w.WriteStartElement('command', 'syntax', $cmd)
    foreach ($set in $command.ParameterSets) {
        $w.WriteStartElement('command', 'syntaxItem', $cmd)
        $w.WriteElementString('name', $maml, $command.Name)
        foreach ($sp in $set.Parameters | Where-Object { $_.Name -notin $common }) {
            $p = $command.Parameters[$sp.Name]
            $setAttr = [pscustomobject]@{ IsMandatory = $sp.IsMandatory; Position = $sp.Position; ValueFromPipeline = $sp.ValueFromPipeline; ValueFromPipelineByPropertyName = $sp.ValueFromPipelineByPropertyName }
            Write-Parameter $p $setAttr $paramText[$sp.Name] $defaults[$sp.Name]
        }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'parameters', $cmd)
    foreach ($p in $own) {
        # The parameter as it is in its first set (mandatory, position and pipeline input may differ by set).
        $attr = $p.Attributes | Where-Object { $_ -is [Management.Automation.ParameterAttribute] } | Select-Object -First 1
        $setAttr = [pscustomobject]@{ IsMandatory = $attr.Mandatory; Position = $attr.Position; ValueFromPipeline = $attr.ValueFromPipeline; ValueFromPipelineByPropertyName = $attr.ValueFromPipelineByPropertyName }
        Write-Parameter $p $setAttr $paramText[$p.Name] $defaults[$p.Name]
    }
    $w.WriteEndElement()

    $inputs = $own | Where-Object { $_.Attributes | Where-Object { $_ -is [Management.Automation.ParameterAttribute] -and ($_.ValueFromPipeline -or $_.ValueFromPipelineByPropertyName) } }
    $w.WriteStartElement('command', 'inputTypes', $cmd)
    foreach ($p in $inputs) {
        $w.WriteStartElement('command', 'inputType', $cmd)
        $w.WriteStartElement('dev', 'type', $dev); $w.WriteElementString('name', $maml, $p.ParameterType.FullName); $w.WriteEndElement()
        Description "-$($p.Name), from the pipeline"
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteStartElement('command', 'returnValues', $cmd)
    foreach ($o in $command.OutputType) {
        $w.WriteStartElement('command', 'returnValue', $cmd)
        $w.WriteStartElement('dev', 'type', $dev); $w.WriteElementString('name', $maml, $o.Name); $w.WriteEndElement()
        Description ''
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'examples', $cmd)
    $i = 0
    foreach ($example in $examples) {
        $i++
        $w.WriteStartElement('command', 'example', $cmd)
        $w.WriteElementString('title', $maml, "-------------------------- Example $i --------------------------")
        $w.WriteElementString('code', $dev, (Format-Code $example.SelectSingleNode('code').InnerText))
        $w.WriteStartElement('dev', 'remarks', $dev)
        foreach ($p in $example.SelectNodes('para')) { Para (($p.InnerText -replace '\s+', ' ').Trim()) }
        $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteStartElement('command', 'relatedLinks', $cmd)
    $w.WriteStartElement('maml', 'navigationLink', $maml); $w.WriteElementString('linkText', $maml, 'about_GraLoRA'); $w.WriteElementString('uri', $maml, ''); $w.WriteEndElement()
    $w.WriteEndElement()
    $w.WriteEndElement()
}
$w.WriteEndElement()
$w.WriteEndDocument()
$w.Dispose()
Move-Item -Force $tmp $OutFile
