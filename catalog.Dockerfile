# The file-based catalog of `make catalog`, served by opm of the version that
# validated it (`make catalog-build`).
FROM quay.io/operator-framework/opm:v1.61.0
ENTRYPOINT ["/bin/opm"]
CMD ["serve", "/configs", "--cache-dir=/tmp/cache"]
COPY catalog /configs
# Build the serve cache now, so that the catalog pod starts at once.
RUN ["/bin/opm", "serve", "/configs", "--cache-dir=/tmp/cache", "--cache-only"]
LABEL operators.operatorframework.io.index.configs.v1=/configs
