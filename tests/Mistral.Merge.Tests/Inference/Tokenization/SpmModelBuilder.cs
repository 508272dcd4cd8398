global using SpmModelBuilder = Mistral.Merge.Inference.Tokenization.SentencePieceModelBuilder;
