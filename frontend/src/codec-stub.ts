// Stands in for numcodecs' blosc, lz4 and zstd (WebAssembly builds, ~1.4 MB) that NiiVue's zarr
// reader can load on demand: this page never opens zarr images, and its Content-Security-Policy
// would not let WebAssembly compile anyway.
const unsupported = {
  fromConfig(): never {
    throw new Error('compressed zarr images are not supported on this page')
  },
}
export default unsupported
