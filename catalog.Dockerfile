# The file-based catalog of `make catalog`, served by opm of the version that
# validated it (`make catalog-build`). No serve cache is built in: opm's cache holds a
# random hash seed, which would make every build's digest differ; opm builds it when
# it starts (docs/olm.md).
FROM quay.io/operator-framework/opm:v1.61.0
ENTRYPOINT ["/bin/opm"]
CMD ["serve", "/configs"]
COPY catalog /configs
LABEL operators.operatorframework.io.index.configs.v1=/configs
