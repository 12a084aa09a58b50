// Namespaces nearly every test file uses.
global using System;
global using System.IO;
global using System.Linq;
global using GraLoRA.Adapters;
global using GraLoRA.Models;
global using Xunit;
